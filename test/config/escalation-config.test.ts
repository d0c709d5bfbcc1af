import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/config-loader.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { isPdpError, type PdpError } from '../../src/errors/pdp-error.js';

/** The escalation section and approver callers: defaults, secrets from env or file, and every refusal naming its field. */
const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-escalation-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PEP = { id: 'pep-1', role: 'pep', key_sha256: sha256Hex('a-real-secret-1') };
const APPROVER = { id: 'oncall', role: 'approver', key_sha256: sha256Hex('a-real-secret-2'), approver_groups: ['platform-oncall'] };
const SECRET = 'a-webhook-secret-of-some-length';
const variables = { HOOK_SECRET: SECRET, HOOK_URL: 'https://hooks.slack.com/services/T/B/X', PD_KEY: 'routing-key-1' };

const build = (raw: Record<string, unknown>, env: { nodeEnv?: string } = {}) => buildConfig(raw, join(dir, 'c.yaml'), dir, { ...env, variables });
const webhook = (over: Record<string, unknown> = {}) => ({ id: 'hook', groups: ['platform-oncall'], format: 'generic', url: 'http://127.0.0.1:9/h', secret_env: 'HOOK_SECRET', ...over });

function refusal(raw: Record<string, unknown>, env: { nodeEnv?: string } = {}): PdpError {
  try {
    build(raw, env);
  } catch (err) {
    if (isPdpError(err)) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('approver callers', () => {
  it('takes one role or a list, and the groups of an approver', () => {
    const { config } = build({ callers: [PEP, APPROVER, { id: 'both', role: ['pep', 'approver'], key_sha256: sha256Hex('a-real-secret-3'), agents: ['*'], approver_groups: ['g'] }] });
    expect(config.callers[1]).toMatchObject({ role: 'approver', roles: ['approver'], approver_groups: ['platform-oncall'] });
    expect(config.callers[2]).toMatchObject({ role: 'pep', roles: ['pep', 'approver'], agents: ['*'], approver_groups: ['g'] });
  });

  it.each([
    { note: 'an approver without groups', caller: { ...APPROVER, approver_groups: undefined }, path: 'callers[0].approver_groups' },
    { note: 'groups on a pep', caller: { ...PEP, approver_groups: ['g'] }, path: 'callers[0].approver_groups' },
    { note: 'an unknown role in a list', caller: { ...PEP, role: ['pep', 'root'] }, path: 'callers[0].role' },
    { note: 'a role listed twice', caller: { ...PEP, role: ['pep', 'pep'] }, path: 'callers[0].role' },
    { note: 'an empty group list', caller: { ...APPROVER, approver_groups: [] }, path: 'callers[0].approver_groups' },
  ])('refuses $note, naming the field', ({ caller, path }) => {
    expect(refusal({ callers: [caller] }).details.map((d) => d.path)).toContain(path);
  });
});

describe('escalation', () => {
  it('defaults public_url to the issuer and the link key into the key folder', () => {
    const { config } = build({ callers: [PEP], issuer: { issuer: 'https://pdp.example.com', keys: 'keys' } });
    expect(config.escalation.public_url).toBe('https://pdp.example.com');
    expect(config.escalation.link_key_file).toBe(join(dir, 'keys/approval-link.key'));
    expect(config.escalation.webhooks).toEqual([]);
  });

  it('reads webhook URLs, secrets and routing keys from env or file, never keeping the setting names', () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`);
    chmodSync(secretFile, 0o600);
    const { config, warnings } = build({
      callers: [PEP],
      escalation: {
        webhooks: [
          webhook({ id: 'slack', format: 'slack', url: undefined, url_env: 'HOOK_URL', secret_env: undefined, secret_file: 'secret' }),
          webhook({ id: 'pd', format: 'pagerduty', routing_key_env: 'PD_KEY' }),
        ],
      },
    });
    expect(warnings).toEqual([]);
    expect(config.escalation.webhooks).toEqual([
      { id: 'slack', groups: ['platform-oncall'], format: 'slack', url: variables.HOOK_URL, secret: SECRET, routing_key: null },
      { id: 'pd', groups: ['platform-oncall'], format: 'pagerduty', url: 'http://127.0.0.1:9/h', secret: SECRET, routing_key: 'routing-key-1' },
    ]);
  });

  it.each([
    { note: 'no secret', hook: webhook({ secret_env: undefined }), path: 'escalation.webhooks[0].secret' },
    { note: 'an unset secret variable', hook: webhook({ secret_env: 'NOT_SET' }), path: 'escalation.webhooks[0].secret_env' },
    { note: 'a short secret', hook: webhook({ secret_env: 'PD_KEY' }), path: 'escalation.webhooks[0].secret' },
    { note: 'two URL sources', hook: webhook({ url_env: 'HOOK_URL' }), path: 'escalation.webhooks[0].url' },
    { note: 'no URL', hook: webhook({ url: undefined }), path: 'escalation.webhooks[0].url' },
    { note: 'an unreadable secret file', hook: webhook({ secret_env: undefined, secret_file: 'missing' }), path: 'escalation.webhooks[0].secret_file' },
    { note: 'pagerduty without a routing key', hook: webhook({ format: 'pagerduty' }), path: 'escalation.webhooks[0].routing_key' },
    { note: 'a routing key on a generic hook', hook: webhook({ routing_key_env: 'PD_KEY' }), path: 'escalation.webhooks[0].routing_key' },
    { note: 'an unknown format', hook: webhook({ format: 'email' }), path: 'escalation.webhooks[0].format' },
  ])('refuses a webhook with $note, naming the field and never a secret', ({ hook, path }) => {
    const error = refusal({ callers: [PEP], escalation: { webhooks: [hook] } });
    expect(error.details.map((d) => d.path)).toContain(path);
    const text = JSON.stringify({ message: error.message, details: error.details });
    for (const secret of Object.values(variables)) expect(text).not.toContain(secret);
  });

  it('refuses two webhooks with one id, and backoffs the wrong way round', () => {
    expect(refusal({ callers: [PEP], escalation: { webhooks: [webhook(), webhook()] } }).details.map((d) => d.path)).toContain('escalation.webhooks[1].id');
    expect(refusal({ callers: [PEP], escalation: { outbox: { initial_backoff_ms: 10, max_backoff_ms: 5 } } }).details.map((d) => d.path)).toEqual(['escalation.outbox.initial_backoff_ms']);
  });

  it('warns about a plain-http public URL off loopback, and refuses it in production', () => {
    const raw = { callers: [PEP], escalation: { public_url: 'http://pdp.example.com', webhooks: [webhook()] } };
    expect(build(raw).warnings.join('\n')).toContain('escalation.public_url');
    expect(refusal(raw, { nodeEnv: 'production' }).details.map((d) => d.path)).toContain('escalation.public_url');
  });
});

describe('the CLI reads a config without the webhook secrets', () => {
  it('checks the webhooks are well formed, but reads no variable or file (webhookSecrets: false)', () => {
    const raw = { callers: [PEP], escalation: { webhooks: [webhook({ url: undefined, url_env: 'UNSET_URL', secret_env: 'UNSET_SECRET' })] } };
    expect(refusal(raw).details.map((d) => d.path)).toEqual(['escalation.webhooks[0].url_env', 'escalation.webhooks[0].secret_env']);
    const { config } = buildConfig(raw, join(dir, 'c.yaml'), dir, { variables: {}, webhookSecrets: false });
    expect(config.escalation.webhooks[0]).toMatchObject({ id: 'hook', url: '', secret: '' });
    expect(() => buildConfig({ callers: [PEP], escalation: { webhooks: [webhook({ secret_env: undefined })] } }, join(dir, 'c.yaml'), dir, { webhookSecrets: false })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
  });
});
