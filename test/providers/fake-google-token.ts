/**
 * A fake Google OAuth token endpoint on 127.0.0.1 for service-account assertions (RFC 7523, as Google documents
 * domain-wide delegation): `POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`.
 * It verifies the assertion's RS256 signature with the service account's public key and its claims (iss the
 * account, aud this endpoint, exp after iat and at most an hour later, iat not in the future, a scope), and answers
 * like Google: `{ access_token, expires_in: 3599, token_type: "Bearer" }`, or `{ error, error_description }`.
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

export interface FakeGoogleToken {
  /** The token endpoint URL (also the `aud` it requires). */
  url: string;
  seen: AssertionSeen[];
  hits: number;
  failWith: { status: number; error: string; description: string } | null;
  close(): Promise<void>;
}

export async function startFakeGoogleToken(accounts: ReadonlyMap<string, KeyObject>): Promise<FakeGoogleToken> {
  const fake = { seen: [] as AssertionSeen[], hits: 0, failWith: null as FakeGoogleToken['failWith'], url: '' };
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
        if (typeof claims['scope'] !== 'string' || claims['scope'] === '' || typeof claims['sub'] !== 'string') return reply(400, { error: 'invalid_scope', error_description: 'Empty or missing scope not allowed.' });
        if (fake.failWith !== null) return reply(fake.failWith.status, { error: fake.failWith.error, error_description: fake.failWith.description });
        seen.issued = { access_token: `ya29.${randomBytes(40).toString('base64url')}`, expires_in: 3599 };
        return reply(200, { ...seen.issued, token_type: 'Bearer' });
      })();
    });
  }).listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  return Object.assign(fake, {
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  });
}
