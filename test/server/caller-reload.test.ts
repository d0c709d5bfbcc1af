import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { startServer, type RunningServer } from '../../src/main.js';

/**
 * A new agent is usable without a restart (issue 15, point 1): callers may name agents by pattern (`support-*`),
 * and a reload (POST /v1/admin/reload, SIGHUP) re-reads the config file's callers: keys, roles and agents change
 * at once; a config that does not load is refused whole and the running callers stay.
 */
const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-callers-'));
const configPath = join(dir, 'agent-pdp.yaml');
const ADMIN = 'caller-reload-admin-key';
const PEP = 'caller-reload-pep-key';
const NEW_PEP = 'caller-reload-new-pep-key';

function writeConfig(callers: object[]): void {
  const config = {
    server: { listen: '127.0.0.1:0' },
    policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    callers: [{ id: 'ops', role: 'admin', key_sha256: sha256Hex(ADMIN) }, ...callers],
  };
  writeFileSync(configPath, stringify(config), { mode: 0o600 });
}

function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) privateTree(join(path, e.name));
    else chmodSync(join(path, e.name), 0o644);
  }
}

let server: RunningServer;
beforeAll(async () => {
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  privateTree(join(dir, 'policies'));
  cpSync(resolve('opa-bundle/bundle.tar.gz'), join(dir, 'bundle.tar.gz'));
  chmodSync(join(dir, 'bundle.tar.gz'), 0o644);
  writeConfig([{ id: 'support-pep', role: 'pep', key_sha256: sha256Hex(PEP), agents: ['support-*'] }]);
  server = await startServer({ configPath });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const decide = (key: string, agent: string) =>
  request(server.url).post('/v1/decide').set('authorization', `Bearer ${key}`).send({ agent_id: agent, task: { id: 't-1' }, integration: 'crm', scopes: ['tickets:read'] });
/** Polls (bounded) until `probe` yields a value: audit events of a reload are written just after its answer. */
async function eventually<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('not within a second');
}

const reload = () => request(server.url).post('/v1/admin/reload').set('authorization', `Bearer ${ADMIN}`);

describe('agents by pattern', () => {
  it('support-* lets the PEP speak for support-resolver, not for code-review-agent', async () => {
    expect((await decide(PEP, 'support-resolver')).status).toBe(200);
    expect((await decide(PEP, 'code-review-agent')).body.error.code).toBe('forbidden_agent');
  });
});

describe('reloading the callers', () => {
  it('a new caller, another agent list and a removed key apply at the reload, without a restart', async () => {
    expect((await decide(NEW_PEP, 'code-review-agent')).status).toBe(401);
    writeConfig([
      { id: 'support-pep', role: 'pep', key_sha256: sha256Hex(PEP), agents: ['support-resolver', 'code-review-agent'] },
      { id: 'new-pep', role: 'pep', key_sha256: sha256Hex(NEW_PEP), agents: ['*'] },
    ]);
    // Nothing changes before the reload.
    expect((await decide(NEW_PEP, 'code-review-agent')).status).toBe(401);
    await reload().expect(200);
    expect((await decide(NEW_PEP, 'code-review-agent')).status).toBe(200);
    expect((await decide(PEP, 'code-review-agent')).status).toBe(200);

    writeConfig([{ id: 'new-pep', role: 'pep', key_sha256: sha256Hex(NEW_PEP), agents: ['*'] }]);
    await reload().expect(200);
    expect((await decide(PEP, 'support-resolver')).status).toBe(401);

    // Each change is in the trail: the callers in force, never a key.
    const replaced = await eventually(async () => {
      const out: AuditEventV1[] = [];
      for await (const e of server.pdp.store.iterateEvents({ types: ['callers.replaced'] })) out.push(e);
      return out.length === 2 ? out : undefined;
    });
    expect(replaced.map((e) => (e.data as { callers: Array<{ id: string }> }).callers.map((c) => c.id))).toEqual([
      ['new-pep', 'ops', 'support-pep'],
      ['new-pep', 'ops'],
    ]);
    expect(JSON.stringify(replaced)).not.toContain(sha256Hex(NEW_PEP));
    // A reload that changes nothing writes nothing.
    await reload().expect(200);
    expect(await eventually(async () => {
      let n = 0;
      for await (const _ of server.pdp.store.iterateEvents({ types: ['callers.replaced'] })) n++;
      return n;
    })).toBe(2);
  });

  it('a config that does not load is refused whole (422, naming the field); the running callers stay', async () => {
    writeConfig([{ id: 'broken', role: 'superuser', key_sha256: sha256Hex('x') }]);
    const res = await reload().expect(422);
    expect(res.body.error).toMatchObject({ code: 'config_refused', message: expect.stringContaining('config refused') });
    expect(res.body.error.details).toContainEqual(expect.objectContaining({ path: 'callers[1].role' }));
    expect((await decide(NEW_PEP, 'code-review-agent')).status).toBe(200);
  });
});
