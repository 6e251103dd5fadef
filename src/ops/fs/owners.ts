// uid/gid to user/group names, read once from /etc/passwd and /etc/group (Node has no getpwuid).
// Names are recorded alongside the numbers so a restore or an export can show them.
import * as fs from 'node:fs';

function readTable(file: string): Map<number, string> {
  const m = new Map<number, string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return m;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id) && !m.has(id)) m.set(id, f[0]);
  }
  return m;
}

export class OwnerNames {
  private users?: Map<number, string>;
  private groups?: Map<number, string>;

  user(uid: number): string {
    this.users ??= readTable('/etc/passwd');
    return this.users.get(uid) ?? '';
  }

  group(gid: number): string {
    this.groups ??= readTable('/etc/group');
    return this.groups.get(gid) ?? '';
  }
}
