#!/usr/bin/env node
// The revision of opa-bundle/bundle.tar.gz, computed from its sources, so that staleness is
// decided by content (git checkouts make mtimes useless).
//
//   node scripts/bundle-revision.mjs                      print the revision of the sources
//   node scripts/bundle-revision.mjs --sources            print the source files, one per line
//   node scripts/bundle-revision.mjs --of <bundle.tar.gz> print the revision in the bundle's .manifest
//   node scripts/bundle-revision.mjs --verify <bundle.tar.gz>
//        exit 1 unless the bundle holds /.manifest, /data.json ({}) and /policy.wasm, no other
//        data file, and a .manifest revision equal to the sources' revision
//
// Revision: the first 16 hex digits of sha256 over, for each source sorted by path,
// `path + "\0" + content + "\0"`. Sources: rego/**/*.rego except *_test.rego, and
// opa-bundle/capabilities.json. Paths are relative to the repository root, with "/".
// Node built-ins only.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const CAPABILITIES = "opa-bundle/capabilities.json";

/** Every *.rego under rego/ except tests, plus the capabilities file; sorted by path. */
function sources() {
  const found = [];
  for (const entry of readdirSync(join(root, "rego"), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".rego") || entry.name.endsWith("_test.rego")) continue;
    found.push(relative(root, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join("/"));
  }
  found.push(CAPABILITIES);
  return found.sort();
}

function revision() {
  const hash = createHash("sha256");
  for (const path of sources()) {
    hash.update(path, "utf8");
    hash.update("\0");
    hash.update(readFileSync(join(root, path)));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** The regular files of a .tar.gz (ustar, with PAX or GNU long names), by name, as Buffers. */
function untar(file) {
  const tar = gunzipSync(readFileSync(file));
  const files = new Map();
  let longName = null; // from the PAX or GNU header that precedes an entry
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, length) => header.subarray(start, start + length).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1) || "0";
    const prefix = field(345, 155);
    const body = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") {
      longName = body.toString("utf8").replace(/\0.*$/s, "");
    } else if (type === "x") {
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"))?.[1] ?? null;
    } else {
      const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
      longName = null;
      if (type === "0") files.set(name, Buffer.from(body));
    }
  }
  return files;
}

/** The revision recorded in a bundle's .manifest. */
function manifestRevision(files) {
  const manifest = files.get("/.manifest") ?? files.get(".manifest");
  if (!manifest) throw new Error("no .manifest in the bundle");
  const { revision } = JSON.parse(manifest.toString("utf8"));
  if (typeof revision !== "string") throw new Error(".manifest has no revision");
  return revision;
}

/** Problems that make a freshly built bundle unfit to ship; empty when it is fine. */
function problems(files) {
  const found = [];
  for (const required of ["/.manifest", "/data.json", "/policy.wasm"]) {
    if (!files.has(required)) found.push(`missing ${required}`);
  }
  for (const name of files.keys()) {
    // OPA adds the (rewritten) rego modules; any other file would be data or a stray.
    if (!["/.manifest", "/data.json", "/policy.wasm"].includes(name) && !name.endsWith(".rego")) {
      found.push(`unexpected file ${name}`);
    }
  }
  const data = files.get("/data.json");
  if (data && data.toString("utf8").trim() !== "{}") found.push("data.json is not {} (data leaked from rego/)");
  if (files.has("/.manifest")) {
    const want = revision();
    const have = manifestRevision(files);
    if (have !== want) found.push(`.manifest revision ${have} is not the sources' revision ${want}`);
  }
  return found;
}

function main(argv) {
  const [flag, file] = argv;
  if (flag === undefined) {
    console.log(revision());
  } else if (flag === "--sources" && file === undefined) {
    console.log(sources().join("\n"));
  } else if (flag === "--of" && file !== undefined) {
    if (!existsSync(file)) return 1; // no bundle: no revision, nothing printed
    console.log(manifestRevision(untar(file)));
  } else if (flag === "--verify" && file !== undefined) {
    const found = problems(untar(file));
    for (const problem of found) console.error(`${file}: ${problem}`);
    return found.length === 0 ? 0 : 1;
  } else {
    console.error("usage: bundle-revision.mjs [--sources | --of <bundle.tar.gz> | --verify <bundle.tar.gz>]");
    return 2;
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`bundle-revision: ${error.message}`);
  process.exitCode = 1;
}
