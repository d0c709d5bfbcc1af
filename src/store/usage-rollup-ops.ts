/** Usage aggregates from the audit trail (issue 18): the rollup and its summary. Implementation follows. */
import { PdpError } from '../errors/pdp-error.js';
import type { RollupUsageInput, RollupUsageResult, UsageSummary, UsageSummaryInput } from './store.js';
import type { StoreContext } from './store-context.js';

export async function rollupUsage(_ctx: StoreContext, _input: RollupUsageInput = {}): Promise<RollupUsageResult> {
  throw new PdpError('internal', 'rollupUsage is not implemented yet');
}

export async function usageSummary(_ctx: StoreContext, _input: UsageSummaryInput): Promise<UsageSummary> {
  throw new PdpError('internal', 'usageSummary is not implemented yet');
}
