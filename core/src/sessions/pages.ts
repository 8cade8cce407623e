import { createHash } from 'node:crypto'
import type { RouteContext } from '../interfaces.js'

/** Everything reflected into HTML goes through here (OWASP: escape for the HTML context). */
const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c]!)
}

const CSS = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#1b1f24;--muted:#57606a;--border:#d0d7de;--accent:#0b5cad;--accent-text:#fff;--error-bg:#fff1f0;--error:#a4262c}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--card:#1a2027;--text:#e6edf3;--muted:#9aa5b1;--border:#3a434d;--accent:#4c9be8;--accent-text:#0b1117;--error-bg:#3b1618;--error:#ffb3b0}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;padding:1rem}
main{width:100%;max-width:24rem;background:var(--card);border:1px solid var(--border);border-radius:12px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.5rem;margin:0 0 .25rem}
.sub{color:var(--muted);margin:0 0 1.5rem}
button,.button{display:block;width:100%;font:inherit;font-weight:600;text-align:center;text-decoration:none;padding:.65rem 1rem;border-radius:8px;border:1px solid var(--accent);cursor:pointer;margin-top:.75rem}
button.primary{background:var(--accent);color:var(--accent-text)}
button.secondary,.button{background:transparent;color:var(--accent)}
button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.alert{border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}
.error{background:var(--error-bg);color:var(--error)}
ul{padding-left:1.25rem}
iframe.logout{display:none;width:0;height:0;border:0}
`.trim()

const STYLE_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`

export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}

/**
 * Headers of every session page: no script, framed by nobody; `formTargets` may receive
 * this page's form (and its redirect), `frames` are the only origins it may embed
 * (Front-Channel Logout iframes).
 */
export function setPageHeaders(ctx: RouteContext, options: { formTargets?: readonly string[]; frames?: readonly string[] } = {}): void {
  const uniq = (urls: readonly string[] = []) => [...new Set(urls.map(originOf).filter((o): o is string => o !== undefined))]
  const forms = uniq(options.formTargets)
  const frames = uniq(options.frames)
  ctx.set('Content-Security-Policy', `default-src 'none'; style-src ${STYLE_HASH}; img-src 'self' data:; form-action ${forms.length > 0 ? forms.join(' ') : "'none'"}; ` +
    `${frames.length > 0 ? `frame-src ${frames.join(' ')}; ` : ''}frame-ancestors 'none'; base-uri 'none'`)
  ctx.set('X-Frame-Options', 'DENY')
  ctx.set('Cache-Control', 'no-store')
  ctx.set('Pragma', 'no-cache')
  ctx.type = 'text/html; charset=utf-8'
}

export function layout(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>${head}
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>
<p class="alert error" role="alert">${escapeHtml(message)}</p>
<p class="sub">Return to the application you came from.</p>`)
}

export function hiddenFields(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n')
}

/** RP-Initiated Logout 1.0 §2: ask before ending a session the request cannot prove it may end. */
export function confirmLogoutPage(input: { action: string; fields: Record<string, string | undefined>; clientName?: string }): string {
  const who = input.clientName ? ` <strong>${escapeHtml(input.clientName)}</strong> asks you to sign out.` : ''
  return layout('Sign out', `<h1>Sign out?</h1>
<p class="sub">Do you want to sign out of all applications that use this sign-in?${who}</p>
<form method="post" action="${escapeHtml(input.action)}">
${hiddenFields(input.fields)}
<button type="submit" class="primary" name="logout" value="yes">Sign out</button>
<button type="submit" class="secondary" name="logout" value="no">Stay signed in</button>
</form>`)
}

/**
 * The end of a logout: one hidden iframe per Front-Channel Logout client, then either a
 * "signed out" message or, when the RP asked to get its user back, a refresh to its
 * post_logout_redirect_uri once the iframes had a moment to load.
 */
export function signedOutPage(input: { frames: readonly string[]; continueTo?: string; stillSignedIn?: boolean }): string {
  const frames = input.frames.map((src) => `<iframe class="logout" src="${escapeHtml(src)}" title="sign-out" sandbox="allow-scripts allow-same-origin"></iframe>`).join('\n')
  const head = input.continueTo ? `\n<meta http-equiv="refresh" content="${input.frames.length > 0 ? 2 : 0};url=${escapeHtml(input.continueTo)}">` : ''
  const title = input.stillSignedIn ? 'Still signed in' : 'Signed out'
  const text = input.stillSignedIn ? 'You are still signed in.' : 'You have been signed out.'
  const link = input.continueTo ? `\n<a class="button" id="continue" href="${escapeHtml(input.continueTo)}">Return to the application</a>` : '\n<p class="sub">You can close this window.</p>'
  return layout(title, `<h1 id="signed-out">${text}</h1>${link}
${frames}`, head)
}
