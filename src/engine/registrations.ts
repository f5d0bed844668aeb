import { CrossAppAccessError } from '../errors.js';
import type { ClientOptions, ResolvedIdp } from '../options/types.js';

/**
 * This client's registrations at authorization servers (`client`: one, or a list). Which one serves
 * a resource: the one for the authorization server its RFC 9728 metadata names, and for the user's
 * IdP when that server registered the client once per enterprise. A single registration without
 * `issuer` binds, for the life of the engine, to the first authorization server it is used with: the
 * MCP authorization spec (2026-07-28, "Authorization Server Binding") binds credentials to one
 * issuer; binding on first use, when none is configured, is this package's rule.
 */
export class Registrations {
  /** The authorization server an issuer-less single registration was bound to on first use. */
  private boundIssuer: string | undefined;

  constructor(private readonly clients: readonly Readonly<ClientOptions>[]) {}

  /** True when the registration is one without `issuer`, not yet bound: any authorization server may be the first. */
  private get unbound(): boolean {
    return this.clients.length === 1 && this.clients[0]!.issuer === undefined && this.boundIssuer === undefined;
  }

  /**
   * Which of the authorization servers a resource's metadata lists to use (RFC 9728 §7.6: the client
   * chooses): the first one this client is registered at; undefined when it is registered at none.
   */
  choose(listed: readonly string[]): string | undefined {
    if (this.unbound) return listed[0];
    return listed.find((issuer) => this.servesIssuer(issuer));
  }

  /** Binds an issuer-less single registration to its first authorization server (once its metadata validated). */
  bind(issuer: string): void {
    if (this.unbound) this.boundIssuer = issuer;
  }

  /** Every registration that may serve `issuer`'s resources (for users of any IdP). */
  at(issuer: string): Readonly<ClientOptions>[] {
    return this.clients.filter((client) => (client.issuer ?? this.boundIssuer) === issuer);
  }

  /**
   * The registration for `issuer`'s resources and the users of `idp`: the one naming that IdP, else
   * one naming none. Throws `issuer_not_allowed` when there is none: nothing is sent anywhere.
   */
  for(issuer: string, idp: ResolvedIdp, resource: string): Readonly<ClientOptions> {
    const candidates = this.at(issuer);
    const chosen = candidates.find((client) => client.idp !== undefined && client.idp === idp.issuer) ?? candidates.find((client) => client.idp === undefined);
    if (chosen) return chosen;
    const which = idp.issuer ?? idp.tokenEndpoint;
    throw new CrossAppAccessError(
      candidates.length > 0
        ? `The resource ${resource} is guarded by ${issuer}, where this client is registered only for other IdPs' users, not ${which}'s; nothing was sent. Add a registration with issuer ${issuer} and idp ${which} (or one without idp).`
        : `The resource ${resource} is guarded by ${issuer}, where this client holds no registration; nothing was sent. Add a client entry with issuer ${issuer}.`,
      { code: 'issuer_not_allowed', stage: 'discovery' },
    );
  }

  private servesIssuer(issuer: string): boolean {
    return this.clients.some((client) => (client.issuer ?? this.boundIssuer) === issuer);
  }

  /** The issuers this client is registered at, for messages. */
  describe(): string {
    const issuers = [...new Set(this.clients.map((client) => client.issuer ?? this.boundIssuer).filter((i) => i !== undefined))];
    return issuers.length > 0 ? issuers.join(', ') : 'no authorization server yet';
  }
}
