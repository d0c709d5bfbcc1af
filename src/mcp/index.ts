/**
 * `agent-pdp/mcp`: guard the tools of a Model Context Protocol server with the PDP. `createMcpGuard` puts every
 * `tools/call` behind a decision (the server connects through `guard.wrap(transport)`); `mcpResourceServer` lets
 * a remote MCP server sit behind agent-pdp's issuer (RFC 9728 metadata, token checks on the HTTP transport). Loads
 * no server code: only the PEP SDK (`agent-pdp/pep`) and the MCP SDK, which the application brings.
 */
export {
  createMcpGuard,
  GRANT_META,
  McpGuard,
  TASK_META,
  type GuardedHandler,
  type HandlerExtra,
  type IdentitySource,
  type McpGuardOptions,
  type McpIdentity,
  type ToolRegistry,
} from './mcp-guard.js';
export { MappingFailed, type McpToolMapping, type RecordFromArgument, type ToolArguments } from './tool-mapping.js';
export { MCP_REFUSALS, REFUSAL_ERROR_CODE, REFUSAL_META, type McpRefusal, type McpRefusalCode, type RefusalResult } from './tool-refusal.js';
export { mcpResourceServer, type AgentPdpAuthExtra, type McpResourceServer, type McpResourceServerOptions, type Middleware } from './resource-server.js';
export type { ToolVisibilityOptions } from './tool-visibility.js';
export type { ToolGrant } from '../pep/index.js';
