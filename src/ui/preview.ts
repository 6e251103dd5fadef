// What the page shows of a file: text in the page (its first bytes), an image (by its name's
// extension, through /api/cat?inline=1), or only its metadata.
import type { Node } from '../model/node.js';

/** Text shown in the page: the first 256 KiB, enough to recognise a file, small enough for a phone. */
export const TEXT_CAP = 256 * 1024;
/** Images larger than this are offered as downloads only. */
export const IMAGE_CAP = 16 * 1024 * 1024;

const IMAGES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  bmp: 'image/bmp',
  ico: 'image/x-icon',
  // Shown through <img>, where scripts in it never run; served with a sandboxing CSP in any case.
  svg: 'image/svg+xml',
};

export interface Preview {
  kind: 'text' | 'image' | 'binary' | 'none';
  mime?: string;
  cap: number;
}

export function previewOf(node: Node, path: Buffer): Preview {
  if (node.type !== 'file') return { kind: 'none', cap: 0 };
  const name = path.toString('latin1');
  const dot = name.lastIndexOf('.');
  const ext = dot > name.lastIndexOf('/') ? name.slice(dot + 1).toLowerCase() : '';
  const mime = IMAGES[ext];
  if (mime) return node.size <= IMAGE_CAP ? { kind: 'image', mime, cap: IMAGE_CAP } : { kind: 'binary', mime, cap: 0 };
  return { kind: 'text', mime: 'text/plain; charset=utf-8', cap: TEXT_CAP };
}
