import { createHash } from 'node:crypto'
import { escapeHtml, type RouteContext } from '@grantd/core'

/** Everything reflected into HTML goes through the core's escaper (OWASP: escape for the HTML context). */
export { escapeHtml }

const CSS = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#1b1f24;--muted:#57606a;--border:#d0d7de;--accent:#0b5cad;--accent-text:#fff;--error-bg:#fff1f0;--error:#a4262c;--notice-bg:#fff8e5;--notice:#6b4e00}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--card:#1a2027;--text:#e6edf3;--muted:#9aa5b1;--border:#3a434d;--accent:#4c9be8;--accent-text:#0b1117;--error-bg:#3b1618;--error:#ffb3b0;--notice-bg:#3a3117;--notice:#f5d88a}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;padding:1rem}
main{width:100%;max-width:24rem;background:var(--card);border:1px solid var(--border);border-radius:12px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.5rem;margin:0 0 .25rem}
.sub{color:var(--muted);margin:0 0 1.5rem}
label{display:block;font-weight:600;margin:0 0 .25rem}
input[type=text],input[type=password]{display:block;width:100%;font:inherit;padding:.6rem .75rem;border:1px solid var(--border);border-radius:8px;background:transparent;color:inherit;margin:0 0 1rem}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
button,.button{display:block;width:100%;font:inherit;font-weight:600;text-align:center;text-decoration:none;padding:.65rem 1rem;border-radius:8px;border:1px solid var(--accent);cursor:pointer}
button{background:var(--accent);color:var(--accent-text)}
.button{background:transparent;color:var(--accent);margin-top:.75rem}
.alert{border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}
.error{background:var(--error-bg);color:var(--error)}
.notice{background:var(--notice-bg);color:var(--notice)}
.divider{display:flex;align-items:center;gap:.75rem;color:var(--muted);margin:1.5rem 0 .25rem;font-size:.875rem}
.divider::before,.divider::after{content:"";flex:1;border-top:1px solid var(--border)}
`.trim()

/** CSP allows exactly this stylesheet (by hash) and nothing else: no scripts, no external assets. */
const STYLE_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`

/** A CSP source for a URL: its origin, or for a private-use scheme (RFC 8252 §7.1) the scheme itself. */
function origin(url: string): string | undefined {
  try {
    const u = new URL(url)
    if (u.origin !== 'null') return u.origin
    return /^[a-z][a-z0-9+.-]*:$/.test(u.protocol) && u.protocol !== 'javascript:' && u.protocol !== 'data:' ? u.protocol : undefined
  } catch {
    return undefined
  }
}

/**
 * Headers of every page this plugin renders. `formTargets`: where the page's form posts
 * and where that post may redirect (Chromium applies `form-action` to the redirect too).
 */
export function setPageHeaders(ctx: RouteContext, formTargets: readonly string[] = []): void {
  const targets = [...new Set(formTargets.map(origin).filter((o): o is string => o !== undefined))]
  const formAction = targets.length > 0 ? targets.join(' ') : "'none'"
  ctx.set('Content-Security-Policy', `default-src 'none'; style-src ${STYLE_HASH}; img-src 'self' data:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`)
  ctx.set('X-Frame-Options', 'DENY')
  ctx.set('Cache-Control', 'no-store')
  ctx.set('Pragma', 'no-cache')
  ctx.type = 'text/html; charset=utf-8'
}

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
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

export interface LoginPageInput {
  /** Absolute URL the form posts to (built from the issuer, SPEC §4). */
  action: string
  pendingId: string
  csrf: string
  clientName: string
  username?: string
  error?: string
  notices: readonly string[]
  options: ReadonlyArray<{ label: string; href: string }>
  /** Trusted HTML shown above the form (prompt=select_account's "Continue as"). */
  before?: string
}

/** The login form (SPEC §6): labelled fields, an announced error, no script. */
export function loginPage(input: LoginPageInput): string {
  const alerts = [
    ...(input.error ? [`<p class="alert error" role="alert" id="login-error">${escapeHtml(input.error)}</p>`] : []),
    ...input.notices.map((n) => `<p class="alert notice" role="status">${escapeHtml(n)}</p>`),
  ].join('\n')
  const described = input.error ? ' aria-describedby="login-error" aria-invalid="true"' : ''
  const options = input.options.length === 0 ? '' : `
<p class="divider">or</p>
${input.options.map((o) => `<a class="button" href="${escapeHtml(o.href)}">${escapeHtml(o.label)}</a>`).join('\n')}`
  return layout('Sign in', `<h1>Sign in</h1>
<p class="sub">to continue to <strong>${escapeHtml(input.clientName)}</strong></p>
${alerts}
${input.before ?? ''}<form method="post" action="${escapeHtml(input.action)}" novalidate>
<input type="hidden" name="pending" value="${escapeHtml(input.pendingId)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="${escapeHtml(input.username ?? '')}"${described}${input.username ? '' : ' autofocus'}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024"${described}${input.username ? ' autofocus' : ''}>
<button type="submit">Sign in</button>
</form>${options}`)
}

/** A page for errors that must not go back to the client (RFC 6749 §4.1.2.1). */
export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>
<p class="alert error" role="alert">${escapeHtml(message)}</p>
<p class="sub">Return to the application you came from and try again.</p>`)
}
