// Lists of paths to back up (`create --files-from`), parsed as bytes: a Linux path is any bytes
// but NUL, so nothing is decoded here.
//   lines:    one path per line (LF; a CR before it is dropped); empty lines and lines starting
//             with `#` are skipped (restic's --files-from)
//   verbatim: one path per line, exactly as written; only empty lines are skipped
//   raw:      paths separated by NUL bytes (find -print0); empty entries are skipped
export type FilesFromMode = 'lines' | 'verbatim' | 'raw';

export function parseFilesFrom(data: Buffer, mode: FilesFromMode): Buffer[] {
  const sep = mode === 'raw' ? 0 : 0x0a;
  const out: Buffer[] = [];
  let start = 0;
  while (start <= data.length) {
    let end = data.indexOf(sep, start);
    if (end < 0) end = data.length;
    let entry = data.subarray(start, end);
    start = end + 1;
    if (mode === 'lines') {
      if (entry.length > 0 && entry[entry.length - 1] === 0x0d) entry = entry.subarray(0, -1);
      if (entry[0] === 0x23) continue;
    }
    if (entry.length > 0) out.push(entry);
  }
  return out;
}
