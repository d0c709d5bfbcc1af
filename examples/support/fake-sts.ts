/**
 * A fake AWS STS on 127.0.0.1 for the tests and `make demo`: it speaks the Query API the real `@aws-sdk/client-sts` sends
 * (`POST /`, `application/x-www-form-urlencoded`, `Action=AssumeRole&Version=2011-06-15&…`), checks the SigV4
 * signature by recomputing it from the request with the secret key it knows for the access key id (canonical
 * request, string to sign, the derived signing key), and answers with STS's XML: AssumeRoleResponse, or an
 * ErrorResponse with STS's codes (SignatureDoesNotMatch, InvalidClientTokenId, ValidationError, MalformedPolicyDocument,
 * PackedPolicyTooLarge, AccessDenied). Every AssumeRole it accepted or refused for a reason of its own is kept in
 * `requests`.
 *
 * It is as strict as AssumeRole's documented parameters (API reference, AssumeRole; IAM user guide, session tags), so a
 * request the real STS would refuse fails here too. The SDK checks none of these on the client side:
 *   - `RoleSessionName` and `SourceIdentity`: 2 to 64 characters of `[\w+=,.@-]` (so a `SourceIdentity` cannot begin
 *     with the reserved `aws:` either: the pattern has no `:`);
 *   - `DurationSeconds`: 900 to 43200 (the model's constraint), and at most the role's maximum session duration
 *     (`maxSessionSeconds`, default 3600 as a new role's): "The requested DurationSeconds exceeds the
 *     MaxSessionDuration set for this role.";
 *   - `Policy`: 1 to 2048 characters of `[\u0009\u000A\u000D\u0020-\u00FF]` (the plaintext limit), JSON
 *     (MalformedPolicyDocument otherwise);
 *   - `Tags`: at most 50; a key 1 to 128 characters, a value 0 to 256, both of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
 * A broken model constraint is a `ValidationError` whose message lists each one as AWS's request validation words it
 * ("1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or
 * equal to 2048"). The packed size (`PackedPolicySize`, policy and tags compressed) is approximated; past 100 % it is
 * `PackedPolicyTooLarge` as at STS.
 *
 * It also answers GetCallerIdentity signed with a credential it minted (its secret, and the session token in
 * `X-Amz-Security-Token`): the assumed role's ARN, so a test can show the minted credential works in the AWS SDK.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AssumeRoleSeen {
  params: Record<string, string>;
  /** The session policy, parsed. */
  policy: unknown;
  tags: Record<string, string>;
  /** The access key id that signed the request. */
  signedBy: string;
  region: string;
  requestId: string;
  /** What it answered, when it minted. */
  issued?: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: string };
}

export interface FakeSts {
  url: string;
  requests: AssumeRoleSeen[];
  /** Every request that reached the listener, signed correctly or not. */
  hits: number;
  /** Answer the next AssumeRole calls with this STS error instead (null: mint). */
  failWith: { status: number; code: string; message: string } | null;
  /** Add this many seconds to the expiry it answers (a misbehaving provider). */
  extraSeconds: number;
  /** Awaited after it minted and before it answers (a slow STS; a test acting while a mint is in flight). */
  beforeAnswer: ((seen: AssumeRoleSeen) => Promise<void>) | null;
  /** The role's maximum session duration (IAM `MaxSessionDuration`): a longer `DurationSeconds` is refused. */
  maxSessionSeconds: number;
  close(): Promise<void>;
}

export interface FakeStsOptions {
  /** The role's maximum session duration, 3600 to 43200 as IAM allows. Default 3600 (a new role's). */
  maxSessionSeconds?: number;
}

/** AssumeRole's documented constraints (API reference; IAM user guide, "Passing session tags in AWS STS"). */
const STS_NAME = /^[\w+=,.@-]*$/;
const POLICY_TEXT = /^[\u0009\u000A\u000D\u0020-\u00FF]*$/;
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/**
 * The model constraints AssumeRole's request validation checks, each as the message AWS words it; empty when all
 * hold. `params` is the Query API form.
 */
export function assumeRoleValidation(params: Readonly<Record<string, string>>, tagCount: number): string[] {
  const errors: string[] = [];
  const member = (value: string | undefined, at: string, shown: boolean) => (shown && value !== undefined ? `Value '${value}' at '${at}'` : `Value at '${at}'`);
  const lengthIn = (value: string | undefined, at: string, min: number, max: number, shown = true): void => {
    if (value === undefined) return;
    if (value.length < min) errors.push(`${member(value, at, shown)} failed to satisfy constraint: Member must have length greater than or equal to ${min}`);
    if (value.length > max) errors.push(`${member(value, at, shown)} failed to satisfy constraint: Member must have length less than or equal to ${max}`);
  };
  const matches = (value: string | undefined, at: string, pattern: RegExp, source: string, shown = true): void => {
    if (value !== undefined && !pattern.test(value)) errors.push(`${member(value, at, shown)} failed to satisfy constraint: Member must satisfy regular expression pattern: ${source}`);
  };
  const roleArn = params['RoleArn'];
  if (roleArn === undefined) errors.push("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
  lengthIn(roleArn, 'roleArn', 20, 2048);
  const session = params['RoleSessionName'];
  if (session === undefined) errors.push("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
  lengthIn(session, 'roleSessionName', 2, 64);
  matches(session, 'roleSessionName', STS_NAME, '[\\w+=,.@-]*');
  const duration = params['DurationSeconds'];
  if (duration !== undefined) {
    const n = Number(duration);
    if (!/^\d+$/.test(duration)) errors.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer`);
    else if (n < 900) errors.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
    else if (n > 43200) errors.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200`);
  }
  lengthIn(params['Policy'], 'policy', 1, 2048, false);
  matches(params['Policy'], 'policy', POLICY_TEXT, '[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+', false);
  const identity = params['SourceIdentity'];
  lengthIn(identity, 'sourceIdentity', 2, 64);
  matches(identity, 'sourceIdentity', STS_NAME, '[\\w+=,.@-]*');
  if (tagCount > 50) errors.push(`Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50`);
  for (let i = 1; i <= tagCount; i++) {
    const key = params[`Tags.member.${i}.Key`];
    const value = params[`Tags.member.${i}.Value`];
    if (key === undefined) errors.push(`Value null at 'tags.${i}.member.key' failed to satisfy constraint: Member must not be null`);
    if (value === undefined) errors.push(`Value null at 'tags.${i}.member.value' failed to satisfy constraint: Member must not be null`);
    lengthIn(key, `tags.${i}.member.key`, 1, 128);
    matches(key, `tags.${i}.member.key`, TAG_TEXT, '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+');
    lengthIn(value, `tags.${i}.member.value`, 0, 256);
    matches(value, `tags.${i}.member.value`, TAG_TEXT, '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*');
  }
  return errors;
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** RFC 3986 encoding, as SigV4 wants it. */
const uriEncode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function errorXml(code: string, message: string, requestId: string): string {
  const type = code === 'InternalFailure' ? 'Receiver' : 'Sender';
  return (
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${code}</Code>\n` +
    `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`
  );
}

/**
 * An approximation of STS's packed size in percent (STS compresses the policy and the tags into the session token and
 * does not document the format): a 2048-character policy with a few short tags stays below 100.
 */
function packedPolicySize(policy: string, tags: Readonly<Record<string, string>>): number {
  const tagChars = Object.entries(tags).reduce((n, [k, v]) => n + k.length + v.length, 0);
  return Math.ceil((policy.length + tagChars) / 40);
}

/**
 * Checks the SigV4 `Authorization` header of a request against `secrets` (access key id → secret). Returns the
 * access key id and region, or the STS error code and message to answer.
 */
export function verifySigV4(
  req: { method: string; path: string; headers: IncomingMessage['headers']; body: Buffer },
  secrets: ReadonlyMap<string, string>,
  now: Date,
): { ok: true; accessKeyId: string; region: string } | { ok: false; code: string; message: string } {
  const header = req.headers['authorization'];
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return { ok: false, code: 'IncompleteSignature', message: 'Authorization header is not AWS4-HMAC-SHA256' };
  const [, accessKeyId = '', date = '', region = '', service = '', signedHeaderList = '', signature = ''] = m;
  const secret = secrets.get(accessKeyId);
  if (secret === undefined) return { ok: false, code: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' };
  if (service !== 'sts') return { ok: false, code: 'SignatureDoesNotMatch', message: `credential scope names service ${service}` };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) return { ok: false, code: 'IncompleteSignature', message: 'x-amz-date missing or not the scope date' };
  const signedAt = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(now.getTime() - signedAt) > 15 * 60 * 1000) return { ok: false, code: 'SignatureDoesNotMatch', message: 'Signature expired' };
  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) return { ok: false, code: 'SignatureDoesNotMatch', message: 'host and x-amz-date must be signed' };
  const canonicalHeaders = signedHeaders
    .map((name) => {
      const value = req.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const [path = '/', query = ''] = req.path.split('?');
  const canonicalQuery = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => p.split('=').map((x) => uriEncode(decodeURIComponent(x))).join('='))
    .sort()
    .join('&');
  const payloadHash = sha256(req.body);
  const claimedHash = req.headers['x-amz-content-sha256'];
  if (claimedHash !== undefined && claimedHash !== payloadHash) return { ok: false, code: 'SignatureDoesNotMatch', message: 'x-amz-content-sha256 is not the body hash' };
  const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
  }
  return { ok: true, accessKeyId, region };
}

/** `secrets`: the source credentials it accepts (access key id → secret access key). */
export async function startFakeSts(secrets: ReadonlyMap<string, string>, options: FakeStsOptions = {}): Promise<FakeSts> {
  const fake: Omit<FakeSts, 'url' | 'close'> = { requests: [], hits: 0, failWith: null, extraSeconds: 0, maxSessionSeconds: options.maxSessionSeconds ?? 3600, beforeAnswer: null };
  const answer = (res: ServerResponse, status: number, xml: string, requestId: string): void => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
    res.end(xml);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fake.hits += 1;
      const requestId = randomUUID();
      const body = Buffer.concat(chunks);
      if (req.method !== 'POST' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
        return answer(res, 400, errorXml('InvalidAction', 'POST a form-urlencoded Query API request', requestId), requestId);
      }
      const minted = new Map(fake.requests.flatMap((r) => (r.issued ? [[r.issued.accessKeyId, r.issued.secretAccessKey] as const] : [])));
      const signed = verifySigV4({ method: req.method, path: req.url ?? '/', headers: req.headers, body }, new Map([...secrets, ...minted]), new Date());
      if (!signed.ok) return answer(res, 403, errorXml(signed.code, signed.message, requestId), requestId);
      const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
      const session = fake.requests.find((r) => r.issued?.accessKeyId === signed.accessKeyId);
      if (session !== undefined) {
        // A minted credential: only with its session token (signed), only GetCallerIdentity, only before it expires.
        const token = req.headers['x-amz-security-token'];
        const signedHeaders = /SignedHeaders=([^,]+)/.exec(String(req.headers['authorization']))?.[1]?.split(';') ?? [];
        if (token !== session.issued!.sessionToken || !signedHeaders.includes('x-amz-security-token')) {
          return answer(res, 403, errorXml('InvalidClientTokenId', 'The security token included in the request is invalid.', requestId), requestId);
        }
        if (Date.parse(session.issued!.expiration) <= Date.now()) return answer(res, 403, errorXml('ExpiredToken', 'The security token included in the request is expired', requestId), requestId);
        if (params['Action'] !== 'GetCallerIdentity') return answer(res, 403, errorXml('AccessDenied', 'the session policy allows no sts action', requestId), requestId);
        const arn = `arn:aws:sts::${(session.params['RoleArn'] ?? '').split(':')[4]}:assumed-role/${(session.params['RoleArn'] ?? '').split('/').pop()}/${session.params['RoleSessionName']}`;
        const xml =
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <GetCallerIdentityResult>\n    <Arn>${xmlEscape(arn)}</Arn>\n` +
          `    <UserId>AROA3XFRBF535PLBIFPI4:${xmlEscape(session.params['RoleSessionName'] ?? '')}</UserId>\n    <Account>${(session.params['RoleArn'] ?? '').split(':')[4]}</Account>\n` +
          `  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n`;
        return answer(res, 200, xml, requestId);
      }
      if (params['Action'] !== 'AssumeRole' || params['Version'] !== '2011-06-15') {
        return answer(res, 400, errorXml('InvalidAction', `unknown action ${params['Action']}`, requestId), requestId);
      }
      const tags: Record<string, string> = {};
      let tagCount = 0;
      while (params[`Tags.member.${tagCount + 1}.Key`] !== undefined || params[`Tags.member.${tagCount + 1}.Value`] !== undefined) tagCount++;
      for (let i = 1; i <= tagCount; i++) tags[params[`Tags.member.${i}.Key`] ?? ''] = params[`Tags.member.${i}.Value`] ?? '';
      const seen: AssumeRoleSeen = { params, policy: null, tags, signedBy: signed.accessKeyId, region: signed.region, requestId };
      fake.requests.push(seen);
      const refuse = (code: string, message: string) => answer(res, 400, errorXml(code, message, requestId), requestId);
      const invalid = assumeRoleValidation(params, tagCount);
      if (invalid.length > 0) return refuse('ValidationError', `${invalid.length} validation error${invalid.length === 1 ? '' : 's'} detected: ${invalid.join('; ')}`);
      const duration = Number(params['DurationSeconds'] ?? '3600');
      if (duration > fake.maxSessionSeconds) return refuse('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
      if (params['Policy'] !== undefined) {
        try {
          seen.policy = JSON.parse(params['Policy']);
        } catch {
          return refuse('MalformedPolicyDocument', 'The policy is not valid JSON');
        }
      }
      const packed = packedPolicySize(params['Policy'] ?? '', tags);
      if (packed > 100) return refuse('PackedPolicyTooLarge', `Packed policy consumes ${packed}% of allotted space, please use smaller policy.`);
      if (fake.failWith !== null) return answer(res, fake.failWith.status, errorXml(fake.failWith.code, fake.failWith.message, requestId), requestId);
      const roleArn = params['RoleArn'] ?? '';
      const roleName = roleArn.split('/').pop() ?? '';
      const account = roleArn.split(':')[4] ?? '';
      const issued = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(64).toString('base64'),
        expiration: new Date(Math.floor(Date.now() / 1000) * 1000 + (duration + fake.extraSeconds) * 1000).toISOString().replace('.000Z', 'Z'),
      };
      seen.issued = issued;
      const xml =
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <AssumeRoleResult>\n` +
        (params['SourceIdentity'] === undefined ? '' : `    <SourceIdentity>${xmlEscape(params['SourceIdentity'])}</SourceIdentity>\n`) +
        `    <AssumedRoleUser>\n      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:${xmlEscape(params['RoleSessionName'] ?? '')}</AssumedRoleId>\n` +
        `      <Arn>arn:aws:sts::${account}:assumed-role/${xmlEscape(roleName)}/${xmlEscape(params['RoleSessionName'] ?? '')}</Arn>\n    </AssumedRoleUser>\n` +
        `    <Credentials>\n      <AccessKeyId>${issued.accessKeyId}</AccessKeyId>\n      <SecretAccessKey>${issued.secretAccessKey}</SecretAccessKey>\n` +
        `      <SessionToken>${issued.sessionToken}</SessionToken>\n      <Expiration>${issued.expiration}</Expiration>\n    </Credentials>\n` +
        `    <PackedPolicySize>${packed}</PackedPolicySize>\n  </AssumeRoleResult>\n` +
        `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n`;
      if (fake.beforeAnswer === null) return answer(res, 200, xml, requestId);
      void fake.beforeAnswer(seen).finally(() => answer(res, 200, xml, requestId));
    });
  }).listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  });
}
