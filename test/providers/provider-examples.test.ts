/** The shipped provider map examples (examples/provider-policies/) compile, and narrow as their comments say. */
import { describe, expect, it } from 'vitest';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import { sessionPolicy } from '../../src/providers/aws-sts.js';
import { accessBoundary } from '../../src/providers/google-storage.js';
import { googleScopes } from '../../src/providers/google-workspace.js';

describe('examples/provider-policies', () => {
  it('compiles, one map per integration, every scope mapped', async () => {
    const set = await loadPolicyDir('examples/provider-policies');
    const maps = set.providerMaps ?? {};
    expect(Object.keys(maps)).toEqual(['calendar', 'customer-files', 'gmail', 'orders-table', 's3-reports']);
    const values = { record: { type: 'customer', id: '1234' }, context: { user_email: 'ana@example.com' } };
    const s3 = maps['s3-reports'];
    if (s3?.kind !== 'aws') throw new Error('s3-reports is an aws map');
    expect(JSON.stringify(sessionPolicy(s3, { scopes: ['reports:read'], values }))).toContain('acme-reports/customers/1234/*');
    const orders = maps['orders-table'];
    if (orders?.kind !== 'aws') throw new Error('orders-table is an aws map');
    expect(sessionPolicy(orders, { scopes: ['orders:read'], values }).Statement[0]?.Condition).toEqual({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['1234'] } });
    const calendar = maps['calendar'];
    if (calendar?.kind !== 'google_workspace') throw new Error('calendar is a google_workspace map');
    expect(googleScopes(calendar, ['calendar:read'])).toEqual(['https://www.googleapis.com/auth/calendar.readonly']);
    const files = maps['customer-files'];
    if (files?.kind !== 'gcp_storage') throw new Error('customer-files is a gcp_storage map');
    expect(JSON.stringify(accessBoundary(files, { scopes: ['files:read'], values }))).toContain("startsWith('customers/1234/')");
  });
});
