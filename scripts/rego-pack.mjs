#!/usr/bin/env node
// Checks Rego packs (docs/bundles.md, "Rego packs") before scripts/build-bundle.sh compiles them with rego/.
//
//   node scripts/rego-pack.mjs DIR...   print every entrypoint of the packs, one per line; or, for each problem,
//                                       "pack DIR: problem" on stderr and exit 1
//
// A pack is a folder with pack.yaml, *.rego and *_test.rego. It adds rules beside the agent decision and must not
// change it: no package, and no entrypoint, under a root the agent decision owns (agentpdp, the data it reads,
// policies, and the compiled bundle's agentpdp_compiled). Each entrypoint is a rule of one of the pack's own
// packages; no two packs share an id, a folder name (the revision names sources by it), a package or an entrypoint.
// What the OPA compiler checks (syntax, builtins against the capabilities file, that an entrypoint is a rule) is
// left to it.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { parse } from "yaml";

/** The pack.yaml grammar. */
const PACK_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ENTRYPOINT = /^[a-z_][a-z0-9_]*(\/[a-z_][a-z0-9_]*)*$/;
/** Roots of `data` the agent decision owns: its package, the policies it reads, the compiled bundle's metadata. */
const RESERVED_ROOTS = ["agentpdp", "agentpdp_compiled", "policies"];

/** The package path of a Rego module as segments (`package a.b["c"]` → a, b, c); undefined when it has none. */
function packageOf(text) {
  // The package clause is the first statement: only comments and blank lines come before it.
  const match = /^\s*package\s+([^\s#]+)/m.exec(text.replace(/^\s*#.*$/gm, ""));
  if (!match) return undefined;
  return match[1]
    .replace(/^data\./, "")
    .split(/\.|\[\s*"([^"]*)"\s*\]/)
    .filter((segment) => segment !== undefined && segment !== "");
}

function reserved(segments) {
  return RESERVED_ROOTS.includes(segments[0]);
}

/**
 * References a pack module makes to what the agent decision owns: `data.agentpdp…`, `data.policies…`,
 * `data.agentpdp_compiled…`, a computed `data[…]`, or `data` whole. Any `pep` caller can evaluate a pack entrypoint
 * (OPA's data API, AuthZEN), so a pack rule reading these would hand the compiled policies out, or run the agent
 * decision on an input of the caller's making (`with input as`). Read from the source with comments and strings
 * removed: a guard against mistakes, not a sandbox (a pack is the deployment's own code).
 */
function reservedReferences(text) {
  const code = text.replace(/#.*$/gm, "").replace(/`[^`]*`/g, '""').replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
  const found = new Set();
  for (const match of code.matchAll(/\bdata\b(\s*(\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[))?/g)) {
    if (/^\s*package\b/m.test(code.slice(code.lastIndexOf("\n", match.index) + 1, match.index + 1))) continue;
    const root = match[3];
    if (match[2] === undefined) found.add("data");
    else if (root === undefined) found.add("data[...]");
    else if (RESERVED_ROOTS.includes(root)) found.add(`data.${root}`);
  }
  return [...found];
}

/** The problems of one pack, and what it declares. */
function checkPack(dir) {
  const problems = [];
  const found = { id: undefined, entrypoints: [], packages: [] };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return { problems: ["not a folder"], ...found };
  let manifest;
  try {
    manifest = parse(readFileSync(join(dir, "pack.yaml"), "utf8"));
  } catch (error) {
    return { problems: [`pack.yaml: ${error.code === "ENOENT" ? "missing" : error.message.split("\n")[0]}`], ...found };
  }
  const pack = manifest?.pack;
  if (typeof manifest !== "object" || manifest === null || Object.keys(manifest).some((key) => key !== "pack") || typeof pack !== "object" || pack === null) {
    return { problems: ["pack.yaml: must hold exactly one key, pack: { id, description, entrypoints }"], ...found };
  }
  for (const key of Object.keys(pack)) {
    if (!["id", "description", "entrypoints"].includes(key)) problems.push(`pack.yaml: pack.${key} is not a known field`);
  }
  if (typeof pack.id !== "string" || !PACK_ID.test(pack.id)) problems.push(`pack.yaml: pack.id must match ${PACK_ID.source}`);
  else found.id = pack.id;
  if (typeof pack.description !== "string" || pack.description.trim() === "") problems.push("pack.yaml: pack.description must be a non-empty string");
  if (!Array.isArray(pack.entrypoints) || pack.entrypoints.length === 0) {
    problems.push("pack.yaml: pack.entrypoints must list at least one entrypoint");
  } else {
    for (const [i, entrypoint] of pack.entrypoints.entries()) {
      if (typeof entrypoint !== "string" || !ENTRYPOINT.test(entrypoint)) {
        problems.push(`pack.yaml: pack.entrypoints[${i}] must match ${ENTRYPOINT.source}`);
      } else if (reserved(entrypoint.split("/"))) {
        problems.push(`pack.yaml: pack.entrypoints[${i}] ${entrypoint} is under ${entrypoint.split("/")[0]}, which the agent decision owns`);
      } else if (found.entrypoints.includes(entrypoint)) {
        problems.push(`pack.yaml: pack.entrypoints[${i}] ${entrypoint} is listed twice`);
      } else {
        found.entrypoints.push(entrypoint);
      }
    }
  }
  let modules = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".rego")) continue;
    const file = relative(dir, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join("/");
    const segments = packageOf(readFileSync(join(dir, file), "utf8"));
    if (!entry.name.endsWith("_test.rego")) modules++;
    if (segments === undefined || segments.length === 0) {
      problems.push(`${file}: no package clause`);
    } else if (reserved(segments)) {
      // Tests too: a test under agentpdp would run with rego/'s tests and could shadow them.
      problems.push(`${file}: package ${segments.join(".")} is under ${segments[0]}, which the agent decision owns (a pack must not change it)`);
    } else if (!entry.name.endsWith("_test.rego")) {
      const name = segments.join(".");
      if (!found.packages.some((p) => p.join(".") === name)) found.packages.push(segments);
      for (const ref of reservedReferences(readFileSync(join(dir, file), "utf8"))) {
        problems.push(`${file}: reads ${ref}, which the agent decision owns (any pep caller can evaluate a pack's rules: a pack reads only its own data and input)`);
      }
    }
  }
  if (modules === 0) problems.push("no .rego file besides tests");
  for (const entrypoint of found.entrypoints) {
    const path = entrypoint.split("/");
    const owned = found.packages.some((segments) => segments.length < path.length && segments.every((segment, i) => segment === path[i]));
    if (!owned && found.packages.length > 0) problems.push(`pack.yaml: entrypoint ${entrypoint} is not a rule of this pack's packages (${found.packages.map((p) => p.join(".")).join(", ")})`);
  }
  return { problems, ...found };
}

function main(dirs) {
  if (dirs.length === 0) {
    console.error("usage: rego-pack.mjs DIR...");
    return 2;
  }
  const failures = [];
  const seen = { id: new Map(), folder: new Map(), package: new Map(), entrypoint: new Map() };
  const entrypoints = [];
  const claim = (kind, value, dir) => {
    const other = seen[kind].get(value);
    if (other !== undefined) failures.push(`pack ${dir}: ${kind} ${value} is also ${other}'s`);
    seen[kind].set(value, dir);
  };
  for (const [i, dir] of dirs.entries()) {
    if (dirs.slice(0, i).some((earlier) => resolve(earlier) === resolve(dir))) {
      failures.push(`pack ${dir}: given twice`);
      continue;
    }
    const checked = checkPack(resolve(dir));
    for (const problem of checked.problems) failures.push(`pack ${dir}: ${problem}`);
    if (checked.id !== undefined) claim("id", checked.id, dir);
    claim("folder", basename(resolve(dir)), dir);
    for (const segments of checked.packages) claim("package", segments.join("."), dir);
    for (const entrypoint of checked.entrypoints) {
      claim("entrypoint", entrypoint, dir);
      entrypoints.push(entrypoint);
    }
  }
  for (const failure of failures) console.error(failure);
  if (failures.length > 0) return 1;
  console.log(entrypoints.join("\n"));
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`rego-pack: ${error.message}`);
  process.exitCode = 1;
}
