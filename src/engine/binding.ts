import type { ResolvedIdp } from '../options/types.js';
import type { ServerMetadata } from '../oauth/discovery.js';
import type { ResourceBoundary } from '../url-rules.js';

/** A protected resource this wrapper has learned, with the authorization server that guards it. */
export interface ResourceBinding {
  /** The PRM `resource`, verbatim: the AS compares it exactly. */
  readonly resource: string;
  readonly resourceUrl: URL;
  /** `resourceUrl`'s origin and path prefix, for the per-request check. */
  readonly boundary: ResourceBoundary;
  /** Where its RFC 9728 metadata came from (normalised), or '' when it was configured. */
  readonly metadataUrl: string;
  /** The authorization server's validated metadata: its `issuer` is the ID-JAG audience (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). */
  readonly as: ServerMetadata;
  readonly scopes: readonly string[] | undefined;
  /** AS issuer + resource + scope set; the IdP and the registration are added per user, the user per token. */
  readonly key: string;
  /** IdP → the cache partition of its users' tokens (built once, by the registry). */
  readonly partitions: Map<ResolvedIdp, string>;
}
