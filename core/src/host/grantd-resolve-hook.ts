/**
 * Module resolution hook (node:module `register`), installed by the plugin loader.
 *
 * A plugin kept next to a config file in a user's own folder writes
 * `import { definePlugin } from '@grantd/core'` but usually has no node_modules of its
 * own. When Node cannot find an `@grantd/*` package from the importing file, this hook
 * resolves it again from grantd's install, so the plugin shares the running server's
 * copy of the SDK. Every other specifier, and every `@grantd/*` package the plugin's
 * folder does provide, resolves exactly as Node would resolve it.
 */
import type { InitializeHook, ResolveHook } from 'node:module'

let fallbackParentURL: string | undefined

export const initialize: InitializeHook<{ fallbackParentURL: string }> = (data) => {
  fallbackParentURL = data.fallbackParentURL
}

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  try {
    return await nextResolve(specifier, context)
  } catch (err) {
    const notFound = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND'
    if (!notFound || !specifier.startsWith('@grantd/') || fallbackParentURL === undefined || context.parentURL === fallbackParentURL) throw err
    return nextResolve(specifier, { ...context, parentURL: fallbackParentURL })
  }
}
