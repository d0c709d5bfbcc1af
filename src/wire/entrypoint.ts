/**
 * The grammar of a Rego entrypoint named on the wire or in config: slash-separated Rego identifiers, as `opa build
 * --entrypoint` and OPA's data API paths spell them (`authzen/certification/decision`). No leading or trailing
 * slash, no empty segment, nothing that could be a path trick (`..`, `%2F`, `\`).
 */
export const ENTRYPOINT_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*){0,31}$';
