/**
 * Headless Chromium for browser tests (playwright-core driving Debian's /usr/bin/chromium):
 * a fresh profile per test, closed and removed at teardown, and the page's CSP violations
 * collected so a test can assert that none happened.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM = '/usr/bin/chromium'

export async function openPage(t: Test, profilePrefix = 'grantd-chromium-'): Promise<{ page: Page; context: BrowserContext; cspViolations: string[] }> {
  const userDataDir = mkdtempSync(join(tmpdir(), profilePrefix))
  t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }))
  // The machine has no network: background networking, updates and sync stay off.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? (await context.newPage())
  const cspViolations: string[] = []
  page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text()) })
  return { page, context, cspViolations }
}
