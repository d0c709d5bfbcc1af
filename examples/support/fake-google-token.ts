/**
 * A fake Google OAuth token endpoint on 127.0.0.1 (tests, `make demo`) for service-account assertions (RFC 7523, as Google documents
 * domain-wide delegation): `POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`.
 * It verifies the assertion's RS256 signature with the service account's public key and its claims (iss the
 * account, aud this endpoint, exp after iat and at most an hour later, iat not in the future, a scope), and answers
 * like Google: `{ access_token, expires_in: 3599, token_type: "Bearer" }`, or `{ error, error_description }`.
 *
 * `POST /sts` is Google's Security Token Service for Credential Access Boundaries (RFC 8693): it takes only a token
 * it issued to a service account itself (no `sub`), checks the grant and token types, parses `options` (the
 * boundary JSON) and answers a downscoped token like Google STS (`issued_token_type`, `expires_in`).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';

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
          if (source === undefined || source.claims['sub'] !== undefined) return reply(400, { error: 'invalid_grant', error_description: 'The subject token is invalid.' });
          let boundary: unknown;
          try {
            boundary = JSON.parse(form['options'] ?? '');
          } catch {
            return reply(400, { error: 'invalid_request', error_description: 'Invalid options: not JSON' });
          }
          const seen: ExchangeSeen = { form, boundary };
          fake.exchanges.push(seen);
          const rules = (boundary as { accessBoundary?: { accessBoundaryRules?: unknown } }).accessBoundary?.accessBoundaryRules;
          if (!Array.isArray(rules) || rules.length === 0 || rules.length > 10) return reply(400, { error: 'invalid_request', error_description: 'The access boundary must have 1 to 10 rules.' });
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
          ({ payload: claims } = await jwtVerify(assertion, key, { algorithms: ['RS256'], audience: fake.url, issuer: String(unverified['iss']), maxTokenAge: '1h', clockTolerance: 5 }));
        } catch (err) {
          return reply(400, { error: 'invalid_grant', error_description: `Invalid JWT Signature or claims: ${(err as Error).message}` });
        }
        const seen: AssertionSeen = { header, claims };
        fake.seen.push(seen);
        const iat = Number(claims['iat']);
        const exp = Number(claims['exp']);
        if (!(exp > iat) || exp - iat > 3600 || iat > Date.now() / 1000 + 5) return reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.' });
        if (typeof claims['scope'] !== 'string' || claims['scope'] === '' || (claims['sub'] !== undefined && typeof claims['sub'] !== 'string')) return reply(400, { error: 'invalid_scope', error_description: 'Empty or missing scope not allowed.' });
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
