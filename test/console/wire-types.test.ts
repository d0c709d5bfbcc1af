import { describe, expect, it } from 'vitest';
import type * as Ui from '../../console-ui/wire.js';
import type { AuditIntegrityV1, AuditOverviewV1, DecisionSearchV1, DecisionSummaryV1, VerificationV1, VerifyLineV1 } from '../../src/wire/audit-console-v1.js';
import type { AgentActivityV1, AgentListV1 } from '../../src/wire/agents-v1.js';
import { ACCESS_REQUEST_STATUSES, type AccessRequestListV1, type AccessRequestV1 } from '../../src/wire/access-request-v1.js';
import { RECORDED_OUTCOMES } from '../../src/wire/evaluation-v1.js';
import * as UiValues from '../../console-ui/wire.js';

/**
 * console-ui/ imports nothing of src/ (it is compiled on its own for the browser), so console-ui/wire.ts restates the
 * API's shapes it reads. This keeps the two from drifting: what the server's wire types say an answer is must be
 * assignable to what the console reads it as (`make typecheck` compiles this file), and the closed lists are equal.
 */
type Assignable<From, To> = [From] extends [To] ? true : false;

true satisfies Assignable<DecisionSummaryV1, Ui.DecisionSummaryV1>;
true satisfies Assignable<DecisionSearchV1, Ui.DecisionPageV1>;
true satisfies Assignable<VerificationV1, Ui.VerificationV1>;
true satisfies Assignable<VerifyLineV1, Ui.VerifyLine>;
true satisfies Assignable<AuditIntegrityV1, Ui.IntegrityV1>;
true satisfies Assignable<AuditOverviewV1, Ui.OverviewV1>;
true satisfies Assignable<AgentListV1, Ui.AgentListV1>;
true satisfies Assignable<AgentActivityV1, Ui.AgentActivityV1>;
true satisfies Assignable<AccessRequestV1, Ui.AccessRequestV1>;
true satisfies Assignable<AccessRequestListV1, Ui.AccessRequestListV1>;

describe("console-ui/wire.ts against the server's wire types", () => {
  it('lists the same outcomes and access request statuses', () => {
    expect([...UiValues.OUTCOMES].sort()).toEqual([...RECORDED_OUTCOMES].sort());
    expect([...UiValues.ACCESS_REQUEST_STATUSES].sort()).toEqual([...ACCESS_REQUEST_STATUSES].sort());
  });
});
