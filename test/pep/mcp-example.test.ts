/**
 * Example 6 (issue 20, MCP), run in-process against a whole PDP on loopback on the shipped policies (integration
 * crm-mcp, granted to support-resolver), as `make demo` runs it against the built CLI: the SDK's MCP client and
 * server over Streamable HTTP, the resource server's token check, the guard's decisions. Assertions read the
 * transcript's allow / deny / refused entries, which are what the printed lines say.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MCP_RESOURCE, run as runMcpCrm } from '../../examples/mcp-crm.js';
import type { EntryKind, Transcript } from '../../examples/support/transcript.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;
beforeAll(async () => {
  pdp = await startTestPdp({ policies: 'policies' });
});
afterAll(async () => {
  await pdp?.close();
});

const entries = (t: Transcript, kinds: EntryKind[]): string[] => t.entries.filter((e) => kinds.includes(e.kind)).map((e) => `${e.kind}: ${e.text}`);

it('6. the CRM MCP server: 401 without a token, a session token for its resource, write for 1234 allowed, 5678 and delete denied, triage lists less', async () => {
  const printed: string[] = [];
  const t = await runMcpCrm({ pdpUrl: pdp.url, keys: KEYS, log: (line) => printed.push(line) });
  const metadataUrl = 'https://crm-mcp.example.com/.well-known/oauth-protected-resource/mcp';
  expect(entries(t, ['allow', 'deny', 'refused'])).toEqual([
    `refused: MCP client without a token: the MCP server answered 401 invalid_token, resource_metadata ${metadataUrl}`,
    expect.stringMatching(new RegExp(`^allow: session token \\(crm-mcp mcp:tools, task mcp-complaint-\\S+\\): decision \\S+, token \\[mcp:tools\\] for 900 s, aud ${MCP_RESOURCE}$`)),
    expect.stringMatching(/^allow: write_ticket on customer 1234 \(decided by the guard before the handler ran\): decision [0-9a-f-]{36}, token \[tickets:write\] for \d+ s$/),
    expect.stringMatching(/^deny: write_ticket on customer 5678: decision [0-9a-f-]{36}: record_binding_mismatch \(/),
    expect.stringMatching(/^deny: delete_ticket on customer 1234 \(not listed, called anyway\): decision [0-9a-f-]{36}: deny_scope \(.*no_scope_granted/),
    expect.stringMatching(/^allow: session token \(crm-mcp mcp:tools, task mcp-triage-\S+\): /),
  ]);
  const ok = entries(t, ['ok', 'info']);
  expect(ok).toEqual(expect.arrayContaining([
    `info: metadata (/.well-known/oauth-protected-resource/mcp): resource ${MCP_RESOURCE}, authorization_servers [http://127.0.0.1:8181], scopes_supported [mcp:tools]`,
    'ok: connected over Streamable HTTP; tools/list: read_customer, write_ticket (delete_ticket hidden: tickets:delete is denied to the role)',
    expect.stringMatching(/^ok: write_ticket handler ran with a token \[tickets:write\] bound to customer 1234, task mcp-complaint-\S+$/),
    'ok: the client got: ticket T-1 opened for customer 1234',
    "ok: triage session's tools/list: read_customer",
    'info: the MCP server\'s handlers ran 1 time (write_ticket); CRM holds 1 ticket: T-1 for 1234',
  ]));
  // The decisions the guard made are in the audit trail, the denials with their record and reasons.
  const deny = t.entries.find((e) => e.kind === 'deny' && e.text.includes('5678'))!;
  const decisionId = /decision (\S+):/.exec(deny.text)![1]!;
  const record = await fetch(`${pdp.url}/v1/audit/decisions/${decisionId}`, { headers: { authorization: `Bearer ${KEYS.auditor}` } });
  expect(record.status).toBe(200);
  const audited = JSON.stringify(await record.json());
  expect(audited).toContain('record_binding_mismatch');
  expect(audited).toContain('5678');
  expect(printed).toEqual(t.lines);
  expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  // No token reaches the transcript.
  expect(t.lines.join('\n')).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
});
