import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

/**
 * Browser tests of the web console: Debian's headless Chromium (installed by `scripts/chromium.sh install`, which
 * `make test` runs), driven by playwright-core, which downloads no browser of its own.
 *
 * `useBrowser()` in a test file: one browser for the file (launched in beforeAll, closed in afterAll), and a fresh
 * context and page for each test (1280×800, no cookies or storage shared between tests), closed after it.
 */
export interface BrowserSession {
  /** The file's browser. */
  readonly browser: Browser;
  /** This test's context. */
  readonly context: BrowserContext;
  /** This test's page, in `context`. */
  readonly page: Page;
}

export const VIEWPORT = { width: 1280, height: 800 } as const;

const SCRIPT = resolve(import.meta.dirname, '../../scripts/chromium.sh');

/** The Chromium binary `scripts/chromium.sh path` names (CHROMIUM_PATH, else /usr/bin/chromium). */
export function chromiumPath(): string {
  try {
    return execFileSync('bash', [SCRIPT, 'path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    // No skip: a browser test that cannot run fails, saying how to make it run (make test runs the install).
    const said = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`no Chromium for the browser tests: ${said || 'scripts/chromium.sh path failed: run scripts/chromium.sh install'}`);
  }
}

/** Launches headless Chromium: one per test file (`useBrowser` does it in beforeAll). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  // Chromium refuses to start as root with its sandbox on (it needs an unprivileged user for its namespaces, and
  // says "Running as root without --no-sandbox is not supported"): CI containers run as root. As any other user
  // the sandbox stays on.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  // Chromium puts its singleton socket under TMPDIR, and a Unix socket's path is at most 107 bytes: the test run's
  // nested temp folders (test/support/temp-root.ts) can be longer ("Socket path too long", a fatal error). Its own
  // short folder under /tmp, removed when the browser goes.
  const scratch = mkdtempSync(join(existsSync('/tmp') ? '/tmp' : tmpdir(), 'apdp-chromium-'));
  const browser = await chromium.launch({ executablePath, headless: true, args, env: { ...process.env, TMPDIR: scratch } });
  browser.on('disconnected', () => rmSync(scratch, { recursive: true, force: true }));
  return browser;
}

/** Registers the hooks of a browser test file; read the session's members inside tests (and their hooks) only. */
export function useBrowser(): BrowserSession {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  beforeEach(async () => {
    context = await need(browser, 'browser').newContext({ viewport: VIEWPORT });
    // Below the test's own 30 s: an action waiting for an element that never comes fails naming the locator, rather
    // than as a bare test timeout.
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    page = undefined;
  });
  afterAll(async () => {
    await browser?.close();
    browser = undefined;
  });
  return {
    get browser() {
      return need(browser, 'browser');
    },
    get context() {
      return need(context, 'context');
    },
    get page() {
      return need(page, 'page');
    },
  };
}

/** Saves a full-page screenshot of `page` as a PNG at `path` (its folder is created); returns the image's bytes. */
export async function saveScreenshot(page: Page, path: string): Promise<Buffer> {
  mkdirSync(dirname(path), { recursive: true });
  return page.screenshot({ path, fullPage: true, type: 'png' });
}

function need<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`the browser session's ${name} exists only inside a test of a file that called useBrowser()`);
  return value;
}
