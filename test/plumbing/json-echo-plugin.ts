/** A plugin endpoint that takes JSON through the core's `readJson` (as dynamic registration will). */
import { definePlugin, readJson } from '@grantd/core'

export default definePlugin({
  name: 'json-echo',
  register(host) {
    host.route('post', '/json-echo', async (ctx) => {
      const received = await readJson(ctx)
      ctx.body = { received }
    })
  },
})
