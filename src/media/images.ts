/** Image formats Reelay accepts as inputs, recognised by their first bytes (not a header or a name). */
const SIGNATURES: { type: string; ext: string; test: (b: Buffer) => boolean }[] = [
  { type: 'image/png', ext: 'png', test: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { type: 'image/jpeg', ext: 'jpg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: 'image/webp', ext: 'webp', test: (b) => b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP' },
  { type: 'image/gif', ext: 'gif', test: (b) => b.toString('latin1', 0, 4) === 'GIF8' },
];

/** The input image format these bytes are, or undefined when they are none of them. */
export function sniffImage(bytes: Buffer): { type: string; ext: string } | undefined {
  return SIGNATURES.find((s) => s.test(bytes));
}
