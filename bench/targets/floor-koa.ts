/**
 * The floor: the least a Koa server can do for a urlencoded POST — read the body, parse
 * it, answer a small JSON. No auth, no crypto, no logging. Any token server on Koa is
 * slower than this; the ratios in the results are relative to it.
 */
import { serveFloor } from './floor-server.js'

serveFloor((form, ctx) => {
  ctx.body = { ok: true, grant_type: form.get('grant_type'), scope: form.get('scope') }
})
