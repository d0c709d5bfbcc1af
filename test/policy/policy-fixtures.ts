import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';

/** The agent policy from "Minimum Privilege for AI Agents", character for character. */
export const SEED_POLICY = `agent_policy:
  id: code-review-agent
  integrations:
    github:
      max_scope: [repo:read, pr:read, issues:read]
      deny_scope: [repo:write, admin:org, delete_repo]
    slack:
      max_scope: [channels:read, chat:write]
      deny_scope: [admin, channels:manage]
  token_ttl: 3600  # 1 hour
  per_task_downscope: true
`;

const created: string[] = [];
afterAll(async () => {
  await Promise.all(created.map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * Writes `files` (relative path → text) into a fresh temp dir, removed after the test file. Folders 0755 and files
 * 0644 whatever the umask, since the loader refuses group-writable ones (a umask of 002 would make them so).
 */
export async function policyDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-pdp-policy-'));
  created.push(dir);
  for (const [file, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, file)), { recursive: true, mode: 0o755 });
    await writeFile(join(dir, file), text, { mode: 0o644 });
  }
  return dir;
}

/** Strips the common indentation of a template literal so fixtures can be indented with the test code. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indent = Math.min(...text.split('\n').filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0));
  return text.split('\n').map((l) => l.slice(indent)).join('\n');
}
