import type { RouteContext } from '@grantd/core'

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/**
 * The page a browser sees when an external sign-in cannot go back to the client
 * (unknown or replayed state, expired request, another browser's callback): a plain
 * explanation, never a stack trace, never cached, never framed.
 */
export function errorPage(ctx: RouteContext, status: number, title: string, message: string): void {
  ctx.status = status
  ctx.type = 'text/html; charset=utf-8'
  ctx.set('Cache-Control', 'no-store')
  ctx.set('Pragma', 'no-cache')
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
  ctx.set('X-Frame-Options', 'DENY')
  ctx.body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p><p>Return to the application and sign in again.</p></main></body>
</html>
`
}
