/** Decisions and the tokens they are redeemed for: record, redeem once, revoke, record uses.
 * Transactions and reads are generators declared at module level, never inline `function*` expressions
 * (src/store/README.md, "Programs").
 */
import { RawJson, decisionEvent, providerCredentialDiscardedEvent, tokenIssuedEvent, tokenRevokedEvent, tokenUsedEvent } from '../audit/index.js';
import type { NewAuditEvent, TokenRevokeReason } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { RECORDED_OUTCOMES } from '../wire/evaluation-v1.js';
import { encodeData, encodeRecorded } from './chain-writer.js';
import type { PreparedEvent } from './chain-writer.js';
import { decisionFromRow, tokenFromRow } from './rows.js';
import { sameTerms, termsFromEvent } from './decision-terms.js';
import { encodeDecisionData } from './decision-codec.js';
import type { DecisionTerms } from './decision-terms.js';
import type { DecisionRow, TaskRow, TokenRow } from './rows.js';
import type {
  ClaimProviderMintInput,
  EndProviderMintInput,
  RecordDecisionInput,
  RedeemDecisionInput,
  Redemption,
  RevokeTokenInput,
  StoredDecision,
  TokenGrant,
  TokenRecord,
  TokenUseInput,
} from './store.js';
import { SQL } from './sql.js';
import { get, run } from './sql-program.js';
import type { Program } from './sql-program.js';
import { LAST_SECOND_MS } from '../wire/token-v1.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

const OUTCOMES = new Set<string>(RECORDED_OUTCOMES);

/** For writes that refuse, if at all, before their first statement: no savepoint (group-commit.ts, EnqueueOptions). */
const NO_SAVEPOINT = Object.freeze({ savepoint: false });

export async function recordDecision(ctx: StoreContext, decision: RecordDecisionInput): Promise<StoredDecision> {
  requireId('decision_id', decision.decision_id);
  requireId('caller_id', decision.caller_id);
  requireId('agent_id', decision.agent_id);
  requireId('integration', decision.integration);
  requireId('policy_revision', decision.policy_revision);
  if (decision.task_id !== null) requireId('task_id', decision.task_id);
  if (!OUTCOMES.has(decision.outcome)) throw new TypeError(`unknown decision outcome: ${String(decision.outcome)}`);
  requireTime('created_at', decision.created_at);
  if (decision.redeemable_until !== null) requireTime('redeemable_until', decision.redeemable_until);
  const accessRequestId = decision.access_request_id ?? null;
  if (accessRequestId !== null) requireId('access_request_id', accessRequestId);
  // A requestable denial's approver groups go into its event (the answer does not show them), so the event gives
  // its offer back whole and the denial, like any other, is one INSERT.
  const approvers = offerApprovers(decision);
  // Mask once, over input and result together: the event is the record, what every read of the decision gets back.
  const masked = ctx.mask({
    input: decision.input,
    result: decision.result,
    policy_revision: decision.policy_revision,
    ...(approvers === undefined ? {} : { approvers }),
  });
  // Input and result encoded once: their canonical texts (hashed) and the event's stored text come from the same pieces.
  const envelope = { time: decision.created_at, decision_id: decision.decision_id, agent_id: decision.agent_id, caller_id: decision.caller_id, task_id: decision.task_id };
  const encoded = encodeRecorded(() => encodeDecisionData(envelope, masked.input, masked.result, decision.policy_revision, masked.approvers as string[] | undefined));
  const terms: DecisionTerms = {
    integration: decision.integration,
    outcome: decision.outcome,
    policy_revision: decision.policy_revision,
    redeemable_until: decision.redeemable_until,
    token_grant: decision.token_grant ?? null,
    access_request_id: accessRequestId,
  };
  // A row only for terms the event does not give back exactly (a requestable denial's approvers, a masked grant).
  const row = sameTerms(terms, termsFromEvent(masked)) ? undefined : termsParams(terms);
  const record: StoredDecision = {
    decision_id: decision.decision_id,
    caller_id: decision.caller_id,
    agent_id: decision.agent_id,
    task_id: decision.task_id,
    integration: decision.integration,
    outcome: decision.outcome,
    input: masked.input,
    result: masked.result,
    token_grant: decision.token_grant ?? null,
    policy_revision: decision.policy_revision,
    trace_id: decision.trace_id ?? null,
    created_at: decision.created_at,
    redeemable_until: decision.redeemable_until,
    redeemed_jti: null,
    redeemed_at: null,
    access_request_id: accessRequestId,
  };
  const event = ctx.chain.prepare(
    decisionEvent(
      decision.created_at,
      {
        decision_id: decision.decision_id,
        task_id: decision.task_id,
        agent_id: decision.agent_id,
        caller_id: decision.caller_id,
        trace_id: decision.trace_id,
      },
      {
        input: new RawJson(encoded.input),
        result: new RawJson(encoded.result),
        policy_revision: decision.policy_revision,
        ...(masked.approvers === undefined ? {} : { approvers: masked.approvers as string[] }),
      },
    ),
    { premasked: true },
  );
  if (encoded.stored !== undefined) event.storedJson = encoded.stored;
  // Its statements are INSERTs with nothing checked between them: a failure is the database's (the whole batch's).
  return ctx.write(() => writeDecision(ctx, row === undefined ? undefined : [decision.decision_id, ...row], event, record), NO_SAVEPOINT);
}

/**
 * The transaction of recordDecision. No lookup first: the decision id is the PDP's own random UUID. A duplicate (a
 * bug, never a caller's doing) fails the transaction (the row's primary key; the event is looked up by id, first one
 * wins): store_unavailable where a row is written. The common decide writes one INSERT, the event.
 * access_request_id is the id the Decider just read with findElevations: not checked again on the hot path (an
 * unknown one would only leave the decision out of a denial's chain view, never grant anything).
 */
function* writeDecision(ctx: StoreContext, decisionRow: unknown[] | undefined, event: PreparedEvent, record: StoredDecision): Program<StoredDecision> {
  if (decisionRow !== undefined) yield* run(SQL.insertDecision, ...decisionRow);
  yield* ctx.chain.append(event);
  return record;
}

/** A requestable denial's approver groups (its offer's), when its grant is an offer of strings; else undefined. */
function offerApprovers(decision: RecordDecisionInput): string[] | undefined {
  if (decision.outcome !== 'deny') return undefined;
  const offer = (decision.token_grant as { access_request?: { approvers?: unknown } } | null | undefined)?.access_request;
  const approvers = offer?.approvers;
  return Array.isArray(approvers) && approvers.every((a) => typeof a === 'string') ? [...approvers] : undefined;
}

/** A decision's terms as the six parameters the decisions row's statements take after its id. */
function termsParams(t: DecisionTerms): [string, string, string | null, string, string | null, string | null] {
  return [t.integration, t.outcome, t.token_grant == null ? null : JSON.stringify(t.token_grant), t.policy_revision, t.redeemable_until, t.access_request_id];
}

export async function getDecision(ctx: StoreContext, decisionId: string): Promise<StoredDecision | undefined> {
  return ctx.read(() => readDecision(decisionId));
}

/** getDecision's program. */
function* readDecision(decisionId: string): Program<StoredDecision | undefined> {
  const row = yield* get<DecisionRow>(SQL.selectDecision, decisionId);
  return row === undefined ? undefined : decisionFromRow(decisionId, row);
}

/**
 * The checks every redemption makes, in its transaction: the decision exists, was made for this caller, is an
 * allow, unredeemed, within its window, its task still active, and no other redemption holds it for a provider mint
 * (`claim`: this redemption's own, which it may hold).
 */
function* redeemable(
  input: { decision_id: string; caller_id: string; now: string },
  claim: string | null,
): Program<{ row: DecisionRow; decision: StoredDecision; task: TaskRow | undefined }> {
  const row = yield* get<DecisionRow>(SQL.selectDecision, input.decision_id);
  const id = input.decision_id;
  if (row === undefined) throw new PdpError('decision_not_found', `decision ${id} does not exist`);
  const decision = decisionFromRow(id, row);
  if (decision.caller_id !== input.caller_id) {
    throw new PdpError('decision_wrong_caller', `decision ${id} was made for another caller`);
  }
  // The outcome of its terms and of its hashed answer (a row's terms that disagree with the event are not trusted).
  const answered = (decision.result as { outcome?: unknown } | null | undefined)?.outcome;
  if (decision.outcome !== 'allow' || answered !== 'allow') throw new PdpError('decision_not_allowed', `decision ${id} is not an allow`);
  if (row.redeemed_jti !== null) {
    throw new PdpError('decision_already_redeemed', `decision ${id} was already redeemed`);
  }
  if (decision.redeemable_until === null || input.now > decision.redeemable_until) {
    throw new PdpError('decision_expired', `decision ${id} could be redeemed until ${String(decision.redeemable_until)}`);
  }
  // A token must not outlive the revocation its task's completion performs: refuse once the task is closed, or
  // when it has less than a second left (a token lives whole seconds, and none would fit).
  const task = row.task_id === null ? undefined : yield* get<TaskRow>(SQL.selectTask, row.task_id);
  if (task !== undefined && (task.status !== 'active' || Date.parse(task.expires_at) - Date.parse(input.now) < LAST_SECOND_MS)) {
    throw new PdpError('task_not_active', `task ${row.task_id} is no longer active`);
  }
  if (row.mint_claim !== null && row.mint_claim !== claim && row.mint_claim_until !== null && row.mint_claim_until >= input.now) {
    throw new PdpError('redemption_in_progress', `decision ${id} is being redeemed by another request (minting its provider credential until ${row.mint_claim_until})`);
  }
  return { row, decision, task };
}

export async function redeemDecision(ctx: StoreContext, input: RedeemDecisionInput): Promise<Redemption> {
  requireId('decision_id', input.decision_id);
  requireId('caller_id', input.caller_id);
  requireTime('now', input.now);
  const claim = input.mint_claim ?? null;
  if (claim !== null) requireId('mint_claim', claim);
  return ctx.write(() => redeemProgram(ctx, input, claim));
}

/** redeemDecision's transaction. */
function* redeemProgram(ctx: StoreContext, input: RedeemDecisionInput, claim: string | null): Program<Redemption> {
  const { decision, task } = yield* redeemable(input, claim);
  const id = input.decision_id;
  // A claim taken over (this redemption outlived it and another took the decision) is refused by `redeemable`; a
  // claim cleared by the store while this one minted cannot happen (only its holder clears it).
  const grant = input.makeToken(decision, task === undefined ? undefined : { expires_at: task.expires_at });
  assertGrant(grant);
  if ((yield* get(SQL.tokenExists, grant.jti)) !== undefined) throw new PdpError('internal', `jti ${grant.jti} is in use`);
  const token: TokenRecord = {
    jti: grant.jti,
    decision_id: id,
    caller_id: decision.caller_id,
    agent_id: decision.agent_id,
    task_id: decision.task_id,
    scopes: [...grant.scopes],
    audience: grant.audience,
    issued_at: grant.issued_at,
    expires_at: grant.expires_at,
    revoked_at: null,
    revoked_by: null,
    revoke_reason: null,
  };
  const scopesJson = encodeData(token.scopes);
  const event = ctx.chain.prepare(
    tokenIssuedEvent(
      input.now,
      {
        decision_id: id,
        jti: token.jti,
        task_id: token.task_id,
        agent_id: token.agent_id,
        caller_id: token.caller_id,
        trace_id: input.trace_id,
      },
      {
        scopes: token.scopes,
        audience: token.audience,
        issued_at: token.issued_at,
        expires_at: token.expires_at,
        integration: grant.event_data.integration,
        resource: grant.event_data.resource,
        kid: grant.event_data.kid,
        ...(grant.event_data.provider_credential === undefined ? {} : { provider_credential: grant.event_data.provider_credential }),
      },
    ),
  );
  // The decision's row first: the token references it (checked at once on SQLite).
  const marked = yield* run(SQL.markRedeemed, id, ...termsParams(decision), token.jti, input.now);
  if (marked !== 1) throw new PdpError('decision_already_redeemed', `decision ${id} was already redeemed`);
  yield* run(
    SQL.insertToken,
    token.jti,
    id,
    token.caller_id,
    token.agent_id,
    token.task_id,
    scopesJson,
    token.audience,
    token.issued_at,
    token.expires_at,
  );
  yield* ctx.chain.append(event);
  return { decision: { ...decision, redeemed_jti: token.jti, redeemed_at: input.now }, token };
}

/**
 * Claims a decision for a provider mint (migration 10): the redemption's checks, then the claim, committed before the
 * provider is called. Refused like the redemption, and `redemption_in_progress` while another claim is live.
 */
export async function claimProviderMint(ctx: StoreContext, input: ClaimProviderMintInput): Promise<void> {
  requireId('decision_id', input.decision_id);
  requireId('caller_id', input.caller_id);
  requireId('claim', input.claim);
  requireTime('now', input.now);
  requireTime('until', input.until);
  return ctx.write(() => claimMintProgram(input));
}

/** claimProviderMint's transaction. */
function* claimMintProgram(input: ClaimProviderMintInput): Program<void> {
  const { decision } = yield* redeemable(input, null);
  const claimed = yield* run(SQL.claimMint, input.decision_id, ...termsParams(decision), input.claim, input.until, input.now);
  if (claimed !== 1) throw new PdpError('redemption_in_progress', `decision ${input.decision_id} is being redeemed by another request`);
}

/**
 * Ends a claim that issued no token: the mint failed (nothing to record), or its credential was minted and then
 * discarded because the redemption was refused after it (`discarded`: a provider.credential_discarded event, in the
 * same transaction). A claim no longer held (taken over) is left alone; the event is written regardless.
 */
export async function endProviderMint(ctx: StoreContext, input: EndProviderMintInput): Promise<void> {
  requireId('decision_id', input.decision_id);
  requireId('claim', input.claim);
  requireTime('now', input.now);
  const discarded = input.discarded;
  const event =
    discarded === undefined
      ? undefined
      : providerCredentialDiscardedEvent(
          input.now,
          { decision_id: input.decision_id, agent_id: discarded.agent_id, caller_id: discarded.caller_id, task_id: discarded.task_id, trace_id: discarded.trace_id },
          { integration: discarded.integration, reason: discarded.reason, provider_credential: discarded.provider_credential },
        );
  return ctx.write(() => releaseMintProgram(ctx, input, event));
}

/** endProviderMint's transaction. */
function* releaseMintProgram(ctx: StoreContext, input: EndProviderMintInput, event: NewAuditEvent | undefined): Program<void> {
  yield* run(SQL.releaseMint, input.decision_id, input.claim);
  if (event !== undefined) yield* ctx.chain.append(ctx.chain.prepare(event));
}

export async function getToken(ctx: StoreContext, jti: string): Promise<TokenRecord | undefined> {
  return ctx.read(() => readToken(jti));
}

/** getToken's program. */
function* readToken(jti: string): Program<TokenRecord | undefined> {
  const row = yield* get<TokenRow>(SQL.selectToken, jti);
  return row === undefined ? undefined : tokenFromRow(row);
}

export async function revokeToken(ctx: StoreContext, input: RevokeTokenInput): Promise<boolean> {
  requireId('jti', input.jti);
  requireId('caller_id', input.caller_id);
  requireTime('at', input.at);
  const reason = input.reason ?? 'revoked_by_caller';
  return ctx.write(() => revokeProgram(ctx, input, reason));
}

/** revokeToken's transaction. */
function* revokeProgram(ctx: StoreContext, input: RevokeTokenInput, reason: TokenRevokeReason): Program<boolean> {
  const row = yield* get<TokenRow>(SQL.selectToken, input.jti);
  if (row === undefined || (input.any_holder !== true && row.caller_id !== input.caller_id) || row.revoked_at !== null) return false;
  yield* run(SQL.revokeToken, input.at, input.caller_id, reason, input.jti);
  yield* ctx.chain.append(
    ctx.chain.prepare(
      tokenRevokedEvent(
        input.at,
        {
          decision_id: row.decision_id,
          jti: row.jti,
          task_id: row.task_id,
          agent_id: row.agent_id,
          caller_id: input.caller_id,
          trace_id: input.trace_id,
        },
        { reason, issued_to: row.caller_id },
      ),
    ),
  );
  return true;
}

export async function recordTokenUse(ctx: StoreContext, input: TokenUseInput): Promise<void> {
  const use = preparedUse(ctx, input);
  return ctx.write(use, NO_SAVEPOINT);
}

/** One transaction for every input: each is validated, masked and encoded first, so a bad one queues nothing. */
export async function recordTokenUses(ctx: StoreContext, inputs: readonly TokenUseInput[]): Promise<void> {
  if (!Array.isArray(inputs)) throw new TypeError('recordTokenUses takes an array of token uses');
  const uses = inputs.map((input) => preparedUse(ctx, input));
  if (uses.length === 0) return;
  return ctx.write(() => usesProgram(uses), NO_SAVEPOINT);
}

/** recordTokenUses' transaction. */
function* usesProgram(uses: ReadonlyArray<() => Program<void>>): Program<void> {
  for (const use of uses) yield* use();
}

/** Checks and prepares one token.used event; the returned function appends it inside a write transaction. */
function preparedUse(ctx: StoreContext, input: TokenUseInput): () => Program<void> {
  requireId('jti', input.jti);
  requireId('caller_id', input.caller_id);
  requireTime('at', input.at);
  const usedEvent = (row: Pick<TokenRow, 'decision_id' | 'task_id' | 'agent_id'> | undefined) =>
    tokenUsedEvent(
      input.at,
      {
        jti: input.jti,
        caller_id: input.caller_id,
        trace_id: input.trace_id,
        decision_id: row?.decision_id,
        task_id: row?.task_id,
        agent_id: row?.agent_id,
      },
      input.data,
    );
  if (input.token !== undefined) {
    // The caller read the token's row already: no read in the transaction.
    requireId('token.decision_id', input.token.decision_id);
    if (input.token.task_id !== null) requireId('token.task_id', input.token.task_id);
    requireId('token.agent_id', input.token.agent_id);
    const known = ctx.chain.prepare(usedEvent(input.token));
    return () => appendOnly(ctx, known);
  }
  // Validated, masked and encoded before queuing, as every event is.
  const prepared = ctx.chain.prepare(usedEvent(undefined));
  return () => tokenUseProgram(ctx, input, prepared);
}

function* appendOnly(ctx: StoreContext, prepared: PreparedEvent): Program<void> {
  yield* ctx.chain.append(prepared);
}

/** One token.used event appended, correlated with its token's ids. */
function* tokenUseProgram(ctx: StoreContext, input: TokenUseInput, prepared: PreparedEvent): Program<void> {
  // Correlate with the token's decision, task and agent when the token is ours: its ids added to the prepared
  // event (what usedEvent(row) would build, without checking the data a second time).
  const row = yield* get<TokenRow>(SQL.selectToken, input.jti);
  if (row === undefined) {
    yield* ctx.chain.append(prepared);
    return;
  }
  // A copy made by Object.assign, not a spread: keys are added to it (docs/architecture.md, "Following one request").
  const event: NewAuditEvent = Object.assign({}, prepared.event);
  if (row.decision_id !== null) event.decision_id = row.decision_id;
  if (row.task_id !== null) event.task_id = row.task_id;
  if (row.agent_id !== null) event.agent_id = row.agent_id;
  yield* ctx.chain.append({ ...prepared, event });
}

function assertGrant(grant: TokenGrant): void {
  requireId('grant.jti', grant.jti);
  requireTime('grant.issued_at', grant.issued_at);
  requireTime('grant.expires_at', grant.expires_at);
  if (!Array.isArray(grant.scopes) || !grant.scopes.every((s) => typeof s === 'string' && s !== '')) {
    throw new TypeError('grant.scopes must be an array of non-empty strings');
  }
  if (grant.audience !== null && (typeof grant.audience !== 'string' || grant.audience === '')) {
    throw new TypeError('grant.audience must be a non-empty string or null');
  }
  const extras = grant.event_data as Partial<TokenGrant['event_data']> | undefined;
  requireId('grant.event_data.integration', extras?.integration);
  requireId('grant.event_data.kid', extras?.kid);
  const resource = extras?.resource;
  if (resource !== null && (typeof resource?.type !== 'string' || typeof resource.id !== 'string')) {
    throw new TypeError('grant.event_data.resource must be a { type, id } or null');
  }
}
