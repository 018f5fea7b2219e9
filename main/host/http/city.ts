/**
 * City package routes (seed 000 "LEM", §7.1; issue 15 point 3): the routing status (mode, why it is degraded, the
 * package and its age), the offline map geometry the Journey Guide draws without a tile server, and a reload after
 * an operator installed or removed a package. Reading is for every role that meets a traveller; reloading is the
 * operator's.
 */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const readers = ['traveller', 'staff', 'operator'] as const;

const latLon = { type: 'object', additionalProperties: false, required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } } as const;

/** RoutingStatus (main/common/journeys.ts). */
export const routingStatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'degraded', 'package'],
  properties: {
    mode: { type: 'string', enum: ['graph', 'static'], description: '`graph`: routes are planned on the city package; `static`: the journeys\' written routes are used.' },
    degraded: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['reason', 'message'],
      properties: { reason: { type: 'string', enum: ['missing', 'stale', 'invalid'] }, message: { type: 'string' } },
    },
    package: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['id', 'version', 'created_at', 'valid_until', 'age_days'],
      properties: { id: { type: 'string' }, version: { type: 'string' }, created_at: { type: 'string' }, valid_until: { type: 'string' }, age_days: { type: 'integer' } },
    },
  },
} as const;

const cityMapSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['bbox', 'ways', 'stops', 'lines'],
  properties: {
    bbox: { type: 'object', additionalProperties: false, required: ['south', 'west', 'north', 'east'], properties: { south: { type: 'number' }, west: { type: 'number' }, north: { type: 'number' }, east: { type: 'number' } } },
    ways: { type: 'array', items: { type: 'array', items: latLon }, description: 'The walking graph as polylines (junction to junction).' },
    stops: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['id', 'name', 'location'], properties: { id: { type: 'string' }, name: { type: 'string' }, location: latLon } } },
    lines: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name', 'path'], properties: { name: { type: 'string' }, path: { type: 'array', items: latLon } } } },
  },
} as const;

export const cityRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get('/api/city', {
    config: { access: readers },
    schema: {
      summary: 'Routing status: planned on the city package (graph) or degraded to static routes, with why (missing, stale, invalid) and the package with its age in days.',
      tags: ['city'],
      security: secured,
      response: { 200: routingStatusSchema, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async () => runtime.routing.status());

  app.get('/api/city/map', {
    config: { access: readers },
    schema: {
      summary: 'Geometry for an offline map of the city package: ways as polylines, transit stops and lines, bbox.',
      description: 'CITY_PACKAGE_MISSING (404) when routing is degraded (no package, or a stale or invalid one): `GET /api/city` says why.',
      tags: ['city'],
      security: secured,
      response: { 200: cityMapSchema, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef },
    },
  }, async () => {
    const map = runtime.routing.map();
    if (!map) {
      const status = runtime.routing.status();
      throw new TesseraError('CITY_PACKAGE_MISSING', status.degraded?.message ?? 'No city package is loaded.', { details: { reason: status.degraded?.reason ?? 'missing' } });
    }
    return map;
  });

  app.post('/api/city/reload', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Re-read the city package folders (after installing or removing a package) and answer the routing status.',
      description: 'Verifies every package again; journals `lem.degraded` when the reason changes and `city.load_failed` for each package that fails.',
      tags: ['city'],
      security: secured,
      response: { 200: routingStatusSchema, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async () => runtime.routing.reload());
};
