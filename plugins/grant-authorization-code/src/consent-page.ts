import type { ScopeDefinition } from '@grantd/core'
import { escapeHtml, layout } from './login-page.js'

/** What a consent page says about a scope: its description from `HostConfig.scopes` (config `scopes` over the built-in OIDC ones), else its name. */
export function describeScope(scope: string, configured: ReadonlyMap<string, ScopeDefinition>): string {
  return configured.get(scope)?.description ?? scope
}

export interface ConsentPageInput {
  action: string
  pendingId: string
  xsrf: string
  clientName: string
  scopes: ReadonlyArray<{ name: string; description: string }>
  account: string
}

/** SPEC §10: what the application asks for, by name and description; Allow or Deny, no script. */
export function consentPage(input: ConsentPageInput): string {
  const items = input.scopes.map((s) => `<li><strong>${escapeHtml(s.description)}</strong> <span class="sub">(${escapeHtml(s.name)})</span></li>`).join('\n')
  return layout('Allow access', `<h1>Allow access?</h1>
<p class="sub"><strong id="client-name">${escapeHtml(input.clientName)}</strong> wants to access your account <strong>${escapeHtml(input.account)}</strong>:</p>
<ul id="scopes">
${items}
</ul>
<form method="post" action="${escapeHtml(input.action)}">
<input type="hidden" name="pending" value="${escapeHtml(input.pendingId)}">
<input type="hidden" name="xsrf" value="${escapeHtml(input.xsrf)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" class="button" name="decision" value="deny">Deny</button>
</form>`)
}

/** A small form on the login page: continue with the account already signed in (prompt=select_account). */
export function continueAsForm(input: { action: string; pendingId: string; csrf: string; account: string }): string {
  return `<form method="post" action="${escapeHtml(input.action)}">
<input type="hidden" name="pending" value="${escapeHtml(input.pendingId)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<input type="hidden" name="continue" value="1">
<button type="submit" id="continue-as">Continue as ${escapeHtml(input.account)}</button>
</form>
<p class="divider">or sign in with another account</p>`
}
