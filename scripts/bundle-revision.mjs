#!/usr/bin/env node
// The revision of opa-bundle/bundle.tar.gz, computed from its sources, so that staleness is
// decided by content (git checkouts make mtimes useless).
//
//   node scripts/bundle-revision.mjs                      print the revision of the sources
//   node scripts/bundle-revision.mjs --sources            print the source files, one per line
//   node scripts/bundle-revision.mjs --layout             print "name<TAB>file" per source: the name it is
//                                                         compiled and hashed under, the file it is read from
//   node scripts/bundle-revision.mjs --of <bundle.tar.gz> print the revision in the bundle's .manifest
//   node scripts/bundle-revision.mjs --verify <bundle.tar.gz>
//        exit 1 unless the bundle holds /.manifest, /data.json ({}) and /policy.wasm, no other
//        data file, and a .manifest revision equal to the sources' revision
//
// Each form takes any number of `--pack DIR` (Rego packs, docs/bundles.md): their sources are then part of the
// revision, so a bundle with packs names the content of everything compiled into it.
//
// Revision: the first 16 hex digits of sha256 over, for each source sorted by name,
// `name + "\0" + content + "\0"`. Sources: rego/**/*.rego except *_test.rego, and
// opa-bundle/capabilities.json, named by their path relative to the repository root, with "/"; for each pack,
// its pack.yaml and its *.rego except *_test.rego, named `packs/<folder name>/<path in the pack>`, wherever the
// pack is (a deployment's packs need not be in this repository, and the revision must not depend on where).
// Without packs the revision is what it always was. Node built-ins only.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const CAPABILITIES = "opa-bundle/capabilities.json";

/** The *.rego files under `dir` except tests, as paths relative to `dir` with "/". */
function regoFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".rego") || entry.name.endsWith("_test.rego")) continue;
    found.push(relative(dir, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join("/"));
  }
  return found;
}

/**
 * Every source as { name, file }, sorted by name: *.rego under rego/ except tests, the capabilities file, and for
 * each pack its pack.yaml and *.rego except tests (scripts/rego-pack.mjs checks the packs themselves).
 */
function sources(packs) {
  const found = regoFiles(join(root, "rego")).map((path) => ({ name: `rego/${path}`, file: join(root, "rego", path) }));
  found.push({ name: CAPABILITIES, file: join(root, CAPABILITIES) });
  for (const dir of packs) {
    const prefix = `packs/${basename(dir)}`;
    if (found.some((source) => source.name.startsWith(`${prefix}/`))) throw new Error(`two packs in folders named ${basename(dir)}`);
    found.push({ name: `${prefix}/pack.yaml`, file: join(dir, "pack.yaml") });
    for (const path of regoFiles(dir)) found.push({ name: `${prefix}/${path}`, file: join(dir, path) });
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function revision(packs) {
  const hash = createHash("sha256");
  for (const { name, file } of sources(packs)) {
    hash.update(name, "utf8");
    hash.update("\0");
    hash.update(readFileSync(file));
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
function problems(files, packs) {
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
    const want = revision(packs);
    const have = manifestRevision(files);
    if (have !== want) found.push(`.manifest revision ${have} is not the sources' revision ${want}`);
  }
  return found;
}

/** `--pack DIR` options (anywhere) apart from the rest. */
function splitPacks(argv) {
  const packs = [];
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== "--pack") {
      rest.push(argv[i]);
    } else if (i + 1 < argv.length) {
      packs.push(resolve(argv[++i]));
    } else {
      throw new Error("--pack needs a folder");
    }
  }
  return { packs, rest };
}

function main(argv) {
  const { packs, rest } = splitPacks(argv);
  const [flag, file] = rest;
  if (rest.length > 2) {
    return usage();
  } else if (flag === undefined) {
    console.log(revision(packs));
  } else if (flag === "--sources" && file === undefined) {
    console.log(sources(packs).map((source) => relative(root, source.file).split(sep).join("/")).join("\n"));
  } else if (flag === "--layout" && file === undefined) {
    console.log(sources(packs).map((source) => `${source.name}\t${source.file}`).join("\n"));
  } else if (flag === "--of" && file !== undefined) {
    if (!existsSync(file)) return 1; // no bundle: no revision, nothing printed
    console.log(manifestRevision(untar(file)));
  } else if (flag === "--verify" && file !== undefined) {
    const found = problems(untar(file), packs);
    for (const problem of found) console.error(`${file}: ${problem}`);
    return found.length === 0 ? 0 : 1;
  } else {
    return usage();
  }
  return 0;
}

function usage() {
  console.error("usage: bundle-revision.mjs [--sources | --layout | --of <bundle.tar.gz> | --verify <bundle.tar.gz>] [--pack DIR]...");
  return 2;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`bundle-revision: ${error.message}`);
  process.exitCode = 1;
}
