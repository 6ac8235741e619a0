// A real SMTP server (the `smtp-server` package, nodemailer's) that accepts every message on a
// loopback port and prints each as one JSON line on stdout: { from, to, data }. The Rust tests
// of invitation emails start it:
//
//   node end2end/smtp/sink.mjs [--port <N>]      (0, the default, picks a free port)
//
// When ready it prints `smtp-sink listening on 127.0.0.1:<port>`. No TLS, no authentication:
// it only ever listens on 127.0.0.1.
import { SMTPServer } from 'smtp-server';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const server = new SMTPServer({
  secure: false,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      process.stdout.write(
        `${JSON.stringify({
          from: session.envelope.mailFrom?.address ?? null,
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        })}\n`,
      );
      callback();
    });
  },
});
server.on('error', (e) => console.error(`smtp-sink: ${e.message}`));
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`smtp-sink listening on 127.0.0.1:${server.server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
