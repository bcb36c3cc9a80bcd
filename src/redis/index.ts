// mcgravity/redis: integrations that need a Redis client (an optional peer dependency).
export { type RedisScriptClient, RedisStore, type RedisStoreOptions } from './RedisStore.js';
