import { escapeHtml, layout } from '@grantd/grant-authorization-code'

/** The /device page (RFC 8628 §3.3): one field for the code the device shows. */
export function codeEntryPage(input: { action: string; csrf: string; userCode?: string; error?: string }): string {
  const alert = input.error ? `<p class="alert error" role="alert" id="code-error">${escapeHtml(input.error)}</p>` : ''
  const described = input.error ? ' aria-describedby="code-error" aria-invalid="true"' : ''
  return layout('Connect a device', `<h1>Connect a device</h1>
<p class="sub">Enter the code shown on your device.</p>
${alert}
<form method="post" action="${escapeHtml(input.action)}" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required maxlength="64" placeholder="XXXX-XXXX" value="${escapeHtml(input.userCode ?? '')}"${described} autofocus>
<button type="submit">Continue</button>
</form>`)
}

export interface ConfirmPageInput {
  action: string
  ticket: string
  xsrf: string
  clientName: string
  clientId: string
  userCode: string
  account: string
  scopes: ReadonlyArray<{ name: string; description: string }>
  /** Link to sign in as someone else instead. */
  switchAccount: string
}

/**
 * RFC 8628 §5.4: always ask, naming the client and the code, so a user tricked into typing
 * someone else's code (remote phishing) can still refuse.
 */
export function confirmPage(input: ConfirmPageInput): string {
  const items = input.scopes.map((s) => `<li><strong>${escapeHtml(s.description)}</strong> <span class="sub">(${escapeHtml(s.name)})</span></li>`).join('\n')
  const named = input.clientName === input.clientId ? '' : ` <span class="sub">(${escapeHtml(input.clientId)})</span>`
  return layout('Connect this device?', `<h1>Connect this device?</h1>
<p class="sub"><strong id="client-name">${escapeHtml(input.clientName)}</strong>${named} asks to access your account <strong>${escapeHtml(input.account)}</strong>.</p>
<p>Only allow this if the device in front of you shows the code <strong id="user-code">${escapeHtml(input.userCode)}</strong>.
If you did not start this yourself, choose Deny.</p>
<ul id="scopes">
${items}
</ul>
<form method="post" action="${escapeHtml(input.action)}">
<input type="hidden" name="ticket" value="${escapeHtml(input.ticket)}">
<input type="hidden" name="xsrf" value="${escapeHtml(input.xsrf)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" class="button" name="decision" value="deny">Deny</button>
</form>
<p class="divider">not ${escapeHtml(input.account)}?</p>
<a class="button" id="switch-account" href="${escapeHtml(input.switchAccount)}">Use another account</a>`)
}

/** After the decision: the user goes back to the device (nothing redirects anywhere). */
export function donePage(approved: boolean, clientName: string): string {
  return approved
    ? layout('Device connected', `<h1>Device connected</h1>
<p class="sub" id="outcome" data-outcome="approved">You allowed <strong>${escapeHtml(clientName)}</strong>. Return to your device; you can close this page.</p>`)
    : layout('Request denied', `<h1>Request denied</h1>
<p class="sub" id="outcome" data-outcome="denied">You denied <strong>${escapeHtml(clientName)}</strong>. The device will not get access.</p>`)
}
