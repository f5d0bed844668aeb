import { CrossAppAccessError } from '../../errors.js';
import type { CrossAppAccessEvent } from '../../events.js';
import { decodeJwt } from '../jwt.js';

/**
 * After a token exchange sent with a DPoP proof (draft-ietf-oauth-identity-assertion-authz-grant-04
 * §8.6): the ID-JAG's `cnf.jkt` must be our key's thumbprint (RFC 9449 §6.1). Bound to another key,
 * it is refused before it is sent; unbound (an IdP without key binding, or a downgrade), it is
 * reported with a diagnostic and used as it is. An encrypted ID-JAG cannot be read and is not checked.
 */
export function checkIdJagBinding(idJag: string, jkt: string, emit: (event: CrossAppAccessEvent) => void): void {
  const jwt = decodeJwt(idJag);
  if (!jwt) return;
  const cnf = jwt.claims.cnf;
  const bound = typeof cnf === 'object' && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined;
  if (bound === undefined) {
    emit({ type: 'diagnostic', message: 'The IdP did not bind the ID-JAG to the DPoP key (no cnf.jkt) although the token exchange carried a proof; it is used unbound.', durationMs: 0 });
    return;
  }
  if (bound !== jkt) {
    throw new CrossAppAccessError('The IdP bound the ID-JAG to another key than this client\'s DPoP key (cnf.jkt differs); it was not sent to the authorization server.', {
      code: 'id_jag_mismatch',
      stage: 'token_exchange',
    });
  }
}
