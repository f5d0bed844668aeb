/** A promise held open until `open()` (Promise.withResolvers is Node 22+): for holding a step of a test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
