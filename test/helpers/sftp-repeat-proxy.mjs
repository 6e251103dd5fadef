// An SFTP stream between SftpBackend and a real server (the command given as arguments) that
// misbehaves one way: a folder read (READDIR) the server ends with EOF is answered instead with the
// folder's last batch of names again, up to 40 times, then the EOF. A client without a guard lists
// those names 41 times; SftpBackend must refuse the listing (FolderListingGuard).
import { spawn } from 'node:child_process';

const [cmd, ...args] = process.argv.slice(2);
const server = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
server.on('exit', (code) => process.exit(code ?? 1));
const READDIR = 12;
const STATUS = 101;
const NAME = 104;
const EOF = 1;
const readdirIds = new Set();
let lastNames;
let repeats = 0;

/** Calls `each(packet)` for every whole packet (length prefix included) as bytes arrive. */
function packets(each) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = 4 + buf.readUInt32BE(0);
      each(buf.subarray(0, n));
      buf = buf.subarray(n);
    }
  };
}

process.stdin.on('data', packets((p) => {
  if (p[4] === READDIR) readdirIds.add(p.readUInt32BE(5));
  server.stdin.write(p);
}));
process.stdin.on('end', () => server.stdin.end());

server.stdout.on('data', packets((p) => {
  const type = p[4];
  const id = p.length >= 9 ? p.readUInt32BE(5) : -1;
  if (type === NAME && readdirIds.has(id)) lastNames = Buffer.from(p.subarray(9));
  if (type === STATUS && readdirIds.has(id) && p.readUInt32BE(9) === EOF && lastNames && repeats < 40) {
    repeats++;
    const head = Buffer.alloc(9);
    head.writeUInt32BE(5 + lastNames.length, 0);
    head[4] = NAME;
    head.writeUInt32BE(id, 5);
    process.stdout.write(Buffer.concat([head, lastNames]));
    return;
  }
  process.stdout.write(p);
}));
