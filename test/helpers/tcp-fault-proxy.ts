// A TCP proxy on 127.0.0.1 that forwards to a real server and breaks connections on purpose, for
// fault tests of network backends: each new connection asks `plan` what to do to it, and the
// fault fires when the given number of bytes has passed in the given direction (the bytes of the
// chunk that crosses the mark are cut there, so data arrives truncated). Kinds:
// - reset: both sides get a TCP RST (ECONNRESET), as from a crashed peer or a middlebox;
// - drop: both sides are closed cleanly (FIN) mid-stream;
// - stall: nothing more is forwarded either way, the sockets stay open (a dead network, which
//   only keepalives or timeouts notice);
// - delay: every chunk is held `ms` before it is forwarded (a slow link), no break.
import * as net from 'node:net';

export type Direction = 'up' | 'down'; // up: client to server; down: server to client

export type ConnFault =
  | { kind: 'reset' | 'drop' | 'stall'; direction: Direction; afterBytes: number }
  | { kind: 'delay'; ms: number };

export class TcpFaultProxy {
  /** Connections accepted so far (the first is 1). */
  connections = 0;
  /** Every fault that fired: "conn 3: reset after 12345 bytes up". */
  readonly fired: string[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private plan: (conn: number) => ConnFault | undefined,
  ) {}

  static async start(targetPort: number, plan: (conn: number) => ConnFault | undefined = () => undefined): Promise<TcpFaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const p = new TcpFaultProxy(server, (server.address() as net.AddressInfo).port, plan);
    server.on('connection', (client) => p.accept(client, targetPort));
    return p;
  }

  setPlan(plan: (conn: number) => ConnFault | undefined): void {
    this.plan = plan;
  }

  private accept(client: net.Socket, targetPort: number): void {
    const conn = ++this.connections;
    const fault = this.plan(conn);
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {}); // the other side is closed below
    }
    const counts = { up: 0, down: 0 };
    let broken = false;
    const fire = (kind: 'reset' | 'drop' | 'stall', dir: Direction, at: number): void => {
      broken = true;
      this.fired.push(`conn ${conn}: ${kind} after ${at} bytes ${dir}`);
      if (kind === 'reset') {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      } else if (kind === 'drop') {
        client.end();
        upstream.end();
      }
      // stall: keep both open and forward nothing more
    };
    const forward = (from: net.Socket, to: net.Socket, dir: Direction): void => {
      from.on('data', (chunk: Buffer) => {
        if (broken) return;
        if (fault && fault.kind !== 'delay' && fault.direction === dir && counts[dir] + chunk.length >= fault.afterBytes) {
          const keep = fault.afterBytes - counts[dir];
          if (keep > 0) to.write(chunk.subarray(0, keep));
          counts[dir] += Math.max(0, keep);
          fire(fault.kind, dir, fault.afterBytes);
          return;
        }
        counts[dir] += chunk.length;
        if (fault?.kind === 'delay') {
          setTimeout(() => {
            if (!broken && !to.destroyed) to.write(chunk);
          }, fault.ms);
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => {
        if (!broken) to.end();
      });
      from.on('close', () => to.destroy()); // a stalled side that gives up closes the other too
    };
    forward(client, upstream, 'up');
    forward(upstream, client, 'down');
  }

  /** Cut every open connection (RST) without closing the proxy. */
  resetAll(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
