/**
 * Example 7: native downscoping (docs/providers.md). `reporting-agent` builds a customer report: it reads one
 * calendar with a read-only Google Workspace token minted for the task's user, and the S3 prefix of its task's
 * customer with an STS credential whose session policy is exactly that prefix. Both are minted by the PDP when it
 * redeems the allow, against the fakes `make demo` starts (a fake Google token endpoint and a fake STS, which check
 * the assertion's signature and the SigV4 signature). Writing the calendar and reading another customer's
 * reports are denied by policy: nothing reaches Google or AWS for them.
 */
import { randomUUID } from 'node:crypto';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { guardTool, isPermissionDenied, PdpClient } from '../src/pep/index.js';
import type { FakeGoogleToken } from './support/fake-google-token.js';
import type { FakeSts } from './support/fake-sts.js';
import { TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';

export const title = 'Example 7: provider credentials narrowed to the grant (reporting-agent: Workspace + S3)';

export async function run(options: ExampleOptions & { sts: FakeSts; google: FakeGoogleToken }): Promise<Transcript> {
  const { pdpUrl, keys, sts, google } = options;
  const out = new TranscriptWriter(title, options.log);
  const taskId = `report-${randomUUID()}`;
  const res = await fetch(`${pdpUrl}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keys.orchestrator}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: taskId, agent_id: 'reporting-agent', type: 'customer_report', context: { customer_id: '1234', user_email: 'ana@example.com' }, expires_in_seconds: 7200 }),
  });
  if (res.status !== 201) throw new Error(`registering the task answered ${res.status}`);
  out.add('info', `orchestrator registered task ${taskId}: customer 1234, for ana@example.com`);
  const pdp = new PdpClient({ url: pdpUrl, apiKey: keys.pep });
  const base = { pdp, agentId: 'reporting-agent', task: taskId, tokens: false as const };

  const readCalendar = guardTool({ ...base, integration: 'calendar', scopes: ['calendar:read'] }, async (_args: object, grant) => {
    const assertion = google.seen.at(-1);
    return { authorization: grant.googleAuthorization, sub: String(assertion?.claims['sub']), scope: String(assertion?.claims['scope']) };
  });
  const cal = await readCalendar({});
  out.add('allow', `calendar:read → a Google token for ${cal.sub}, scope ${cal.scope} (the assertion the fake verified)`);

  const writeCalendar = guardTool({ ...base, integration: 'calendar', scopes: ['calendar:write'] }, async () => 'written');
  const googleHits = google.hits;
  try {
    await writeCalendar({});
    out.add('info', 'UNEXPECTED: calendar:write was allowed');
  } catch (err) {
    if (!isPermissionDenied(err)) throw err;
    out.add('deny', `calendar:write: above the ceiling; the token endpoint was ${google.hits === googleHits ? 'not called' : 'CALLED'}`);
  }

  const readReports = (customer: string) =>
    guardTool({ ...base, integration: 's3-reports', scopes: ['reports:read'], resource: { type: 'customer', id: customer } }, async (_args: object, grant) => {
      const client = new STSClient({ region: grant.awsRegion ?? '', endpoint: sts.url, credentials: grant.awsCredentials, maxAttempts: 1 });
      try {
        const identity = await client.send(new GetCallerIdentityCommand({}));
        return { arn: identity.Arn ?? '', policy: sts.requests.at(-1)?.policy };
      } finally {
        client.destroy();
      }
    });
  const reports = await readReports('1234')({});
  const statements = (reports.policy as { Statement: Array<{ Action: string[]; Resource: string[] }> }).Statement;
  out.add('allow', `reports:read on customer 1234 → STS session ${reports.arn}`);
  for (const s of statements) out.add('info', `  session policy: ${s.Action.join(', ')} on ${s.Resource.join(', ')}`);
  const stsHits = sts.hits;
  try {
    await readReports('5678')({});
    out.add('info', 'UNEXPECTED: reports of customer 5678 were allowed');
  } catch (err) {
    if (!isPermissionDenied(err)) throw err;
    out.add('deny', `reports:read on customer 5678: not the task's customer; STS was ${sts.hits === stsHits ? 'not called' : 'CALLED'}`);
  }
  return out.done();
}
