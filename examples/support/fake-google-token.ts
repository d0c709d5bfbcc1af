/**
 * A fake Google OAuth token endpoint on 127.0.0.1 (tests, `make demo`) for service-account assertions (RFC 7523, as Google
 * documents it for service accounts and domain-wide delegation): `POST /token`, form
 * `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`. It verifies the assertion's RS256 signature
 * with the service account's public key, then its claims as Google states them, each refusal in Google's shape
 * `{ error, error_description }`:
 *   - `iss` a known account (`invalid_client` otherwise), `aud` exactly this token endpoint;
 *   - `iat` not in the future, `exp` after it and at most an hour later (3600 s): "Invalid JWT: Token must be a
 *     short-lived token (60 minutes) and in a reasonable timeframe";
 *   - `scope` a non-empty space-separated list (`invalid_scope`: "Empty or missing scope not allowed.");
 *   - `sub`, the user of domain-wide delegation: when present, a non-empty string (`invalid_grant`: "Invalid email or
 *     User ID"); a Workspace scope (anything but the Cloud scopes `cloud-platform*` and `devstorage.*`) asked without a
 *     `sub` is refused too (`unauthorized_client`). Google would answer the account's own token there, which reaches
 *     no user's data: the fake refuses it so a delegation flow that lost its subject fails in a test.
 * It answers like Google: `{ access_token, expires_in: 3599, token_type: "Bearer" }`, whatever `exp` was asked.
 *
 * `POST /sts` is Google's Security Token Service for Credential Access Boundaries (RFC 8693): it takes only a token
 * it issued to a service account itself (no `sub`) with the cloud-platform scope, checks the grant and token types,
 * and parses `options` as the documented `AccessBoundary` (STS REST reference, `AccessBoundary`): exactly
 * `{ accessBoundary: { accessBoundaryRules: [...] } }`, 1 to 10 rules, each with `availableResource`
 * `//storage.googleapis.com/projects/_/buckets/<bucket>`, `availablePermissions` a non-empty list of `inRole:roles/…`,
 * and optionally `availabilityCondition` `{ expression, title?, description? }` (an expression of at most 2048
 * characters); an unknown member is refused as Google's JSON parsing does. A refusal is `invalid_request` with a
 * description. Otherwise it answers a downscoped token like Google STS (`issued_token_type`, `expires_in`).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';

export interface AssertionSeen {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  issued?: { access_token: string; expires_in: number };
}

export interface ExchangeSeen {
  form: Record<string, string>;
  boundary: unknown;
  issued?: { access_token: string };
}

export interface FakeGoogleToken {
  /** Google STS's URL on the fake. */
  stsUrl: string;
  exchanges: ExchangeSeen[];
  /** The token endpoint URL (also the `aud` it requires). */
  url: string;
  seen: AssertionSeen[];
  hits: number;
  failWith: { status: number; error: string; description: string } | null;
  close(): Promise<void>;
}

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** The scopes of Google Cloud (a service account's own token may carry them); any other is a Workspace scope. */
const CLOUD_SCOPE = /^https:\/\/www\.googleapis\.com\/auth\/(cloud-platform(\.read-only)?|devstorage\.[a-z_]+)$/;

/** Why Google's token endpoint would refuse these (signature-checked) claims, or null. */
export function assertionRefusal(claims: Readonly<Record<string, unknown>>, tokenEndpoint: string, now: number): { status: number; error: string; description: string } | null {
  if (claims['aud'] !== tokenEndpoint) return { status: 400, error: 'invalid_grant', description: `Invalid JWT: the audience must be ${tokenEndpoint}.` };
  const iat = claims['iat'];
  const exp = claims['exp'];
  if (typeof iat !== 'number' || typeof exp !== 'number' || !(exp > iat) || exp - iat > 3600 || iat > now + 5 || exp < now - 5) {
    return { status: 400, error: 'invalid_grant', description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.' };
  }
  const scope = claims['scope'];
  if (typeof scope !== 'string' || scope.trim() === '') return { status: 400, error: 'invalid_scope', description: 'Empty or missing scope not allowed.' };
  const sub = claims['sub'];
  if (sub !== undefined && (typeof sub !== 'string' || sub === '')) return { status: 400, error: 'invalid_grant', description: 'Invalid email or User ID' };
  if (sub === undefined && scope.split(' ').some((s) => s !== '' && !CLOUD_SCOPE.test(s))) {
    return { status: 401, error: 'unauthorized_client', description: 'A Workspace scope needs the user of domain-wide delegation (sub): the fake refuses a token for the service account itself.' };
  }
  return null;
}

const ACCESS_BOUNDARY_MAX_RULES = 10;
const CEL_MAX_CHARS = 2048;
const BUCKET_RESOURCE = /^\/\/storage\.googleapis\.com\/projects\/_\/buckets\/[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/;
const IN_ROLE = /^inRole:roles\/[A-Za-z0-9_.]+$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKeys = (v: Record<string, unknown>, keys: readonly string[]): string | undefined => Object.keys(v).find((k) => !keys.includes(k));

/** What Google STS would refuse in a Credential Access Boundary (`options`), or null. */
export function accessBoundaryProblem(options: unknown): string | null {
  if (!isObject(options) || onlyKeys(options, ['accessBoundary']) !== undefined || !isObject(options['accessBoundary'])) return 'expected {"accessBoundary": {"accessBoundaryRules": [...]}}';
  const boundary = options['accessBoundary'];
  const extra = onlyKeys(boundary, ['accessBoundaryRules']);
  if (extra !== undefined) return `unknown name "${extra}" in accessBoundary`;
  const rules = boundary['accessBoundaryRules'];
  if (!Array.isArray(rules) || rules.length === 0 || rules.length > ACCESS_BOUNDARY_MAX_RULES) return `the access boundary must have 1 to ${ACCESS_BOUNDARY_MAX_RULES} rules`;
  for (const [i, rule] of rules.entries()) {
    const at = `accessBoundaryRules[${i}]`;
    if (!isObject(rule)) return `${at} is not an object`;
    const unknown = onlyKeys(rule, ['availableResource', 'availablePermissions', 'availabilityCondition']);
    if (unknown !== undefined) return `unknown name "${unknown}" in ${at}`;
    if (typeof rule['availableResource'] !== 'string' || !BUCKET_RESOURCE.test(rule['availableResource'])) return `${at}.availableResource must be //storage.googleapis.com/projects/_/buckets/<bucket>`;
    const permissions = rule['availablePermissions'];
    if (!Array.isArray(permissions) || permissions.length === 0 || !permissions.every((p) => typeof p === 'string' && IN_ROLE.test(p))) return `${at}.availablePermissions must be a non-empty list of inRole:roles/…`;
    const condition = rule['availabilityCondition'];
    if (condition === undefined) continue;
    if (!isObject(condition)) return `${at}.availabilityCondition is not an object`;
    const unknownInCondition = onlyKeys(condition, ['expression', 'title', 'description']);
    if (unknownInCondition !== undefined) return `unknown name "${unknownInCondition}" in ${at}.availabilityCondition`;
    const expression = condition['expression'];
    if (typeof expression !== 'string' || expression === '' || expression.length > CEL_MAX_CHARS) return `${at}.availabilityCondition.expression must be a CEL expression of 1 to ${CEL_MAX_CHARS} characters`;
    for (const key of ['title', 'description'] as const) {
      if (condition[key] !== undefined && typeof condition[key] !== 'string') return `${at}.availabilityCondition.${key} must be a string`;
    }
  }
  return null;
}

export async function startFakeGoogleToken(accounts: ReadonlyMap<string, KeyObject>): Promise<FakeGoogleToken> {
  const fake = { seen: [] as AssertionSeen[], exchanges: [] as ExchangeSeen[], hits: 0, failWith: null as FakeGoogleToken['failWith'], url: '', stsUrl: '' };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        fake.hits += 1;
        const reply = (status: number, body: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
          res.end(JSON.stringify(body));
        };
        if (req.method === 'POST' && req.url === '/sts') {
          const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
          if (form['grant_type'] !== 'urn:ietf:params:oauth:grant-type:token-exchange') return reply(400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' });
          if (form['subject_token_type'] !== 'urn:ietf:params:oauth:token-type:access_token' || form['requested_token_type'] !== 'urn:ietf:params:oauth:token-type:access_token') {
            return reply(400, { error: 'invalid_request', error_description: 'Invalid subject_token_type or requested_token_type' });
          }
          const source = fake.seen.find((s) => s.issued?.access_token === form['subject_token']);
          if (source === undefined || source.claims['sub'] !== undefined || !String(source.claims['scope']).split(' ').includes(CLOUD_PLATFORM)) {
            return reply(400, { error: 'invalid_grant', error_description: 'The subject token is invalid.' });
          }
          let boundary: unknown;
          try {
            boundary = JSON.parse(form['options'] ?? '');
          } catch {
            return reply(400, { error: 'invalid_request', error_description: 'Invalid options: not JSON' });
          }
          const seen: ExchangeSeen = { form, boundary };
          fake.exchanges.push(seen);
          const problem = accessBoundaryProblem(boundary);
          if (problem !== null) return reply(400, { error: 'invalid_request', error_description: `Invalid options: ${problem}` });
          if (fake.failWith !== null) return reply(fake.failWith.status, { error: fake.failWith.error, error_description: fake.failWith.description });
          seen.issued = { access_token: `ya29.d.${randomBytes(40).toString('base64url')}` };
          return reply(200, { access_token: seen.issued.access_token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3599 });
        }
        if (req.method !== 'POST' || req.url !== '/token' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
          return reply(400, { error: 'invalid_request', error_description: 'POST a form to /token' });
        }
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return reply(400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' });
        const assertion = form.get('assertion') ?? '';
        const [h = ''] = assertion.split('.');
        let header: Record<string, unknown>;
        let unverified: Record<string, unknown>;
        try {
          header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
          unverified = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
        } catch {
          return reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT: not a JWT' });
        }
        const key = accounts.get(String(unverified['iss']));
        if (key === undefined) return reply(401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
        let claims: Record<string, unknown>;
        try {
          // The signature only: each claim is checked below, refused in Google's words.
          const { payload } = await compactVerify(assertion, key, { algorithms: ['RS256'] });
          claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
        } catch {
          return reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
        }
        const seen: AssertionSeen = { header, claims };
        fake.seen.push(seen);
        const refusal = assertionRefusal(claims, fake.url, Date.now() / 1000);
        if (refusal !== null) return reply(refusal.status, { error: refusal.error, error_description: refusal.description });
        if (fake.failWith !== null && claims['sub'] !== undefined) return reply(fake.failWith.status, { error: fake.failWith.error, error_description: fake.failWith.description });
        seen.issued = { access_token: `ya29.${randomBytes(40).toString('base64url')}`, expires_in: 3599 };
        return reply(200, { ...seen.issued, token_type: 'Bearer' });
      })();
    });
  }).listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  fake.stsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sts`;
  return Object.assign(fake, {
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  });
}
