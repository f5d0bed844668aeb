// Mistakes the types must refuse. Each line below fails to compile, or this file fails (TS2578).
import { crossAppAccess, withCrossAppAccess, type CrossAppAccessOptions } from 'cross-app-access';

declare const options: CrossAppAccessOptions;
const authedFetch = withCrossAppAccess(fetch, options);

// @ts-expect-error timeout is a number of milliseconds
withCrossAppAccess(fetch, { ...options, timeout: '10s' });
// @ts-expect-error a misspelt option is not silently ignored
withCrossAppAccess(fetch, { ...options, clientSecrett: 'x' });
// @ts-expect-error idp needs a clientId
withCrossAppAccess(fetch, { ...options, idp: { issuer: 'https://acme.okta.com' } });
// @ts-expect-error a private key is a CryptoKey, a JWK or a PEM string
withCrossAppAccess(fetch, { ...options, client: { clientId: 'wiki-app', privateKey: 42 } });
// @ts-expect-error the wrapper calls its fetch with a URL string, which this one cannot take
withCrossAppAccess((url: URL) => fetch(url), options);
// @ts-expect-error a fetch answers with a response, not text
crossAppAccess(options)(async (url: string) => url);
// @ts-expect-error the wrapped fetch takes a URL, a string or a Request
void authedFetch(42);
