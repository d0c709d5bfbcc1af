import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OPA_BIN } from './opa-cli.js';

/**
 * Builds a one-file OPA bundle with the real CLI, the way `make bundle` builds the shipped one (wasm target,
 * our capabilities, entrypoint agentpdp/decision). Returns the path of the .tar.gz in a fresh temp folder.
 */
export function buildTestBundle(rego: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-'));
  const source = join(dir, 'p.rego');
  const out = join(dir, 'bundle.tar.gz');
  writeFileSync(source, rego);
  execFileSync(
    OPA_BIN,
    ['build', '-t', 'wasm', '--capabilities', resolve('opa-bundle/capabilities.json'), '-e', 'agentpdp/decision', '-o', out, '--revision', 'test', source],
    { stdio: 'pipe' },
  );
  return out;
}

/**
 * A decision core for the outcomes the shipped Rego never produces. It denies every input (so the engine's load
 * probe passes: an unknown agent and each agent's first integration are defined denies), except these
 * integrations:
 *   undefined-here   no rule matches: the decision is undefined
 *   conflict-here    two complete rules disagree: evaluation aborts in WASM (var assignment conflict)
 *   malformed-here   an "allow" without scopes or ttl: the result check must refuse it
 */
export const OUTCOMES_REGO = `package agentpdp

special := {"undefined-here", "conflict-here", "malformed-here"}

decision := {"outcome": "deny", "granted_scopes": [], "denied_scopes": [], "reasons": [{"code": "test_deny", "message": "the test bundle denies"}], "token_ttl_seconds": 0} if {
	not special[input.integration]
}

decision := {"outcome": "allow", "granted_scopes": ["a"], "denied_scopes": [], "reasons": [], "token_ttl_seconds": 60} if {
	input.integration == "conflict-here"
}

decision := {"outcome": "allow", "granted_scopes": ["b"], "denied_scopes": [], "reasons": [], "token_ttl_seconds": 60} if {
	input.integration == "conflict-here"
}

decision := {"outcome": "allow", "granted_scopes": [], "denied_scopes": [], "reasons": [], "token_ttl_seconds": 0} if {
	input.integration == "malformed-here"
}
`;

/** A core whose decision is undefined for every input: the engine must refuse to load it. */
export const ALWAYS_UNDEFINED_REGO = `package agentpdp

decision := {"outcome": "allow"} if input.agent_id == "never-matches"
`;
