/**
 * C0 controls, DEL and C1 controls (U+0080–U+009F: a terminal may read U+009B as CSI and U+009D as
 * OSC), and the bidirectional overrides that reorder what a line seems to say (Unicode TR 9).
 */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

// JSON.stringify escapes C0 itself, and its line breaks between members must stay.
const LEFT_RAW_BY_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * A line fit for a terminal: every control character shown as `\uXXXX`, so a server's text (an
 * issuer, an error_description) can neither move the cursor, clear the screen, write the clipboard
 * (OSC 52) nor forge the verdict.
 */
export function printable(line: string): string {
  return line.replace(CONTROLS, escaped);
}

/**
 * JSON with the characters `JSON.stringify` leaves raw (DEL, C1, bidi overrides) escaped too; the
 * parsed value is unchanged, only the bytes a terminal would see.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(LEFT_RAW_BY_JSON, escaped);
}
