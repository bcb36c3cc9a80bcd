/**
 * Stand-ins for your gRPC services in the gRPC example, and the ones mcgravity's own tests use:
 * @grpc/grpc-js servers with a small echo service whose messages are JSON (grpc-js takes any
 * serializer, so no .proto file is needed), with unary, server-streaming, client-streaming and
 * bidirectional methods, and the standard health service (grpc-health-check).
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

type Message = Record<string, unknown>;

const json = {
  requestSerialize: (value: Message) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as Message,
  responseSerialize: (value: Message) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as Message,
};

/** The echo service: `demo.Echo`. */
export const echoService = {
  unary: { path: '/demo.Echo/Unary', requestStream: false, responseStream: false, ...json },
  count: { path: '/demo.Echo/Count', requestStream: false, responseStream: true, ...json },
  sum: { path: '/demo.Echo/Sum', requestStream: true, responseStream: false, ...json },
  chat: { path: '/demo.Echo/Chat', requestStream: true, responseStream: true, ...json },
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'demo.Echo');

/** A client of the echo service, with its streaming methods typed. */
export type EchoClientInstance = grpc.Client & {
  count(request: Message): grpc.ClientReadableStream<Message>;
  sum(
    callback: (error: grpc.ServiceError | null, value?: Message) => void,
  ): grpc.ClientWritableStream<Message>;
  chat(): grpc.ClientDuplexStream<Message, Message>;
};

/** How a replica behaves. */
export interface ReplicaOptions {
  /** Answer every unary call with this status instead (14 is UNAVAILABLE). */
  failWith?: grpc.status;
  /** Delay of each unary answer, in ms. */
  delayMs?: number;
}

/** A running grpc-js server. */
export interface GrpcReplica {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly health: HealthImplementation;
  /** Calls received, by method. */
  readonly calls: Map<string, number>;
  stop(): Promise<void>;
}

/** Starts a grpc-js server with the echo and health services on 127.0.0.1. */
export async function startReplica(name: string, options: ReplicaOptions = {}): Promise<GrpcReplica> {
  const server = new grpc.Server();
  const calls = new Map<string, number>();
  const count = (method: string) => calls.set(method, (calls.get(method) ?? 0) + 1);
  server.addService(echoService, {
    unary: (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
      count('unary');
      const answer = () => {
        if (options.failWith !== undefined)
          callback({ code: options.failWith, details: `${name} is unavailable` });
        else callback(null, { replica: name, text: call.request.text });
      };
      if (options.delayMs === undefined) answer();
      else setTimeout(answer, options.delayMs);
    },
    count: (call: grpc.ServerWritableStream<Message, Message>) => {
      count('count');
      const total = Number(call.request.n);
      let i = 0;
      const write = () => {
        while (i < total) {
          if (!call.write({ i: i++, replica: name })) {
            call.once('drain', write);
            return;
          }
        }
        const trailer = new grpc.Metadata();
        trailer.set('x-sent', String(total));
        call.end(trailer);
      };
      write();
    },
    sum: (call: grpc.ServerReadableStream<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
      count('sum');
      let sum = 0;
      call.on('data', (message: Message) => {
        sum += Number(message.n);
      });
      call.on('end', () => callback(null, { sum, replica: name }));
    },
    chat: (call: grpc.ServerDuplexStream<Message, Message>) => {
      count('chat');
      call.on('data', (message: Message) => call.write({ echo: message.text, replica: name }));
      call.on('end', () => call.end());
    },
  });
  const health = new HealthImplementation({ '': 'SERVING', 'demo.Echo': 'SERVING' });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  let stopped = false;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    health,
    calls,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      server.forceShutdown();
    },
  };
}

/** A client of the echo service at `address` (`host:port`), in cleartext. */
export function echoClient(address: string): EchoClientInstance {
  return new EchoClient(address, grpc.credentials.createInsecure()) as unknown as EchoClientInstance;
}

/** A unary call as a promise: the answer, or the gRPC error. */
export function unary(client: EchoClientInstance, request: Message, deadlineMs = 5000): Promise<Message> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      echoService.unary.path,
      echoService.unary.requestSerialize,
      echoService.unary.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, value?: Message) =>
        error === null ? resolve(value as Message) : reject(error),
    );
  });
}
