/**
 * Policy tests (`agent-pdp policy test`): YAML test files of decision requests and the answers the compiled policy
 * set and the bundle must give, run on the same engine and evaluation input as the server. README.md says more.
 */
export { formatError, jsonErrors, jsonReport, junitReport, textReport } from './test-reports.js';
export { DEFAULT_TESTS_FOLDER, loadTestSuites, type LoadedSuites } from './test-files.js';
export { parseTestFile, type Expectation, type PolicyTestCase, type PolicyTestSuite } from './test-file.js';
export { caseInput, runPolicyTests, runSuites, type CaseResult, type PolicyTestRun, type SuiteResult } from './run-policy-tests.js';
