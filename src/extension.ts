import { ConfigurationError } from './errors.js';

/**
 * The identifier of MCP's Enterprise-Managed Authorization extension, under which a client declares
 * that it uses this flow (the MCP extensions framework: `ClientCapabilities.extensions`).
 *
 * @example
 * ```ts
 * const declared = client.getServerCapabilities()?.extensions?.[ENTERPRISE_MANAGED_AUTHORIZATION] !== undefined;
 * ```
 */
export const ENTERPRISE_MANAGED_AUTHORIZATION = 'io.modelcontextprotocol/enterprise-managed-authorization';

/**
 * What {@link declareEnterpriseManagedAuthorization} returns: the capabilities given, with the extension declared.
 *
 * @example
 * ```ts
 * const capabilities: WithEnterpriseManagedAuthorization<{ roots: {} }> = declareEnterpriseManagedAuthorization({ roots: {} });
 * ```
 */
export type WithEnterpriseManagedAuthorization<C> = Omit<C, 'extensions'> & {
  /** The extensions of `C` (the SDK's own type, so the result is its `ClientCapabilities` again), and this one. */
  extensions: (C extends {
    /** The extensions `C` declares already. */
    extensions?: infer E;
  }
    ? NonNullable<E>
    : unknown) & EnterpriseManagedAuthorizationDeclared;
};

/**
 * The declaration itself: the extension's identifier, with no settings.
 *
 * @example
 * ```ts
 * const declared: EnterpriseManagedAuthorizationDeclared = { 'io.modelcontextprotocol/enterprise-managed-authorization': {} };
 * ```
 */
// A type alias, not an interface: it must fit the SDKs' `extensions` index signature.
export type EnterpriseManagedAuthorizationDeclared = {
  /** No settings: an empty object declares it. */
  [ENTERPRISE_MANAGED_AUTHORIZATION]: Record<string, never>;
};

/**
 * Client capabilities that declare the Enterprise-Managed Authorization extension, for an MCP SDK
 * client's constructor: `new Client(info, { capabilities: declareEnterpriseManagedAuthorization(…) })`.
 * The SDK then carries the declaration where the protocol wants it: in `initialize` (2025-11-25 and
 * earlier, v1 and v2 SDK), and, on a connection that negotiated 2026-07-28 (v2 SDK), in every
 * request's `_meta` (`io.modelcontextprotocol/clientCapabilities`). Opt-in: use it on the clients
 * whose fetch (or `authProvider`) is this package's. Returns a new object; the one given is not
 * changed, and other extensions it declares are kept.
 *
 * @example
 * ```ts
 * import { Client } from '@modelcontextprotocol/sdk/client/index.js';
 * import { declareEnterpriseManagedAuthorization, withCrossAppAccess } from 'cross-app-access';
 *
 * const client = new Client(
 *   { name: 'agent', version: '1.0.0' },
 *   { capabilities: declareEnterpriseManagedAuthorization({ elicitation: {} }) },
 * );
 * await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: withCrossAppAccess(fetch, options) }));
 * ```
 */
export function declareEnterpriseManagedAuthorization<C extends object = Record<never, never>>(capabilities?: C): WithEnterpriseManagedAuthorization<C> {
  if (capabilities !== undefined && (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities))) {
    throw new ConfigurationError('capabilities', 'expected the client capabilities object (or nothing)');
  }
  const extensions: unknown = (capabilities as { extensions?: unknown } | undefined)?.extensions;
  if (extensions !== undefined && (typeof extensions !== 'object' || extensions === null || Array.isArray(extensions))) {
    throw new ConfigurationError('capabilities.extensions', 'expected an object mapping extension identifiers to their settings');
  }
  // The extension has no settings: an empty object declares it (MCP extensions framework).
  return { ...capabilities, extensions: { ...(extensions as Record<string, object> | undefined), [ENTERPRISE_MANAGED_AUTHORIZATION]: {} } } as WithEnterpriseManagedAuthorization<C>;
}
