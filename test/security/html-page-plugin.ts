/** A plugin page that sets none of the security headers itself: the core must add them. */
import { definePlugin } from '@grantd/core'

export default definePlugin({
  name: 'html-page-plugin',
  register(host) {
    host.route('get', '/plugin-page', (ctx) => {
      ctx.type = 'text/html; charset=utf-8'
      ctx.body = '<!doctype html><title>plugin</title><p>hello</p>'
    })
    host.route('get', '/plugin-page-own-csp', (ctx) => {
      ctx.type = 'text/html; charset=utf-8'
      ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'; img-src https://cdn.example")
      ctx.body = '<!doctype html><title>plugin</title><p>own policy</p>'
    })
  },
})
