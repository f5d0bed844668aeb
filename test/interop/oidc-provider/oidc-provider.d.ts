// The few parts of oidc-provider 9 (which ships no types) that the interop suite uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface OidcContext {
    oidc: {
      params: Record<string, string | undefined>;
      client: { clientId: string };
      entity(name: string, value: unknown): void;
    };
    body: unknown;
    get(header: string): string;
    set(header: string, value: string): void;
  }

  export interface SavedToken {
    jkt?: string;
    aud?: string | string[];
    extra?: Record<string, unknown>;
    scope?: string;
    isExpired: boolean;
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    proxy: boolean;
    registerGrantType(name: string, handler: (ctx: OidcContext) => Promise<void>, params?: string[]): void;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): void;
    ClientCredentials: {
      new (init: { client: unknown; scope?: string | undefined; expiresIn?: number }): {
        setThumbprint(prop: 'jkt', thumbprint: string): void;
        setAudience(audience: string): void;
        extra: Record<string, unknown>;
        expiration: number;
        scope: string | undefined;
        tokenType: string;
        save(): Promise<string>;
      };
      find(token: string): Promise<SavedToken | undefined>;
    };
  }
  export default Provider;
  export const errors: {
    InvalidGrant: new (description: string) => Error;
    InvalidRequest: new (description: string) => Error;
    InvalidTarget: new (description: string) => Error;
  };
}

declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  import type { OidcContext, Provider } from 'oidc-provider';
  /** The provider's own DPoP proof validation (RFC 9449 §4.3, its nonces §8). */
  export default function validateDpop(provider: Provider, ctx: OidcContext, accessToken?: string): Promise<{ thumbprint: string; jti: string; iat: number } | undefined>;
  export function checkDpopReplay(provider: Provider, ctx: OidcContext, dPoP: { jti: string }, clientId: string): Promise<void>;
}
