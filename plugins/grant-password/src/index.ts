import { definePlugin } from '@grantd/core'

// Placeholder until this package is implemented; loading it registers nothing.
export default definePlugin({ name: 'grant-password', register() {} })
