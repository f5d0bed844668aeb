/** The `export XAA_…` variables `npx cross-app-access dev` prints (paste them into your shell). */
export const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

/** Stands in for your session store: the dev IdP mints an ID token for any user (loopback only). */
export async function devIdTokenFor(user: string): Promise<string> {
  const response = await fetch(`${env('XAA_ID_TOKEN_URL')}?sub=${encodeURIComponent(user)}`);
  return ((await response.json()) as { id_token: string }).id_token;
}

/** The text of an MCP tool result's first content block. */
export const firstText = (result: unknown): string | undefined => (result as { content?: Array<{ text?: string }> }).content?.[0]?.text;
