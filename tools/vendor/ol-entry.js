// What the web app uses of OpenLayers, as one ES module (namespaces keep the call sites readable: ol.layer.Vector).
export { default as Map } from 'ol/Map.js';
export { default as View } from 'ol/View.js';
export { default as Feature } from 'ol/Feature.js';
export { default as Collection } from 'ol/Collection.js';
export { default as Overlay } from 'ol/Overlay.js';
export * as layer from './ol-layer.js';
export * as source from './ol-source.js';
export * as interaction from 'ol/interaction.js';
export * as geom from 'ol/geom.js';
export * as style from 'ol/style.js';
export * as proj from 'ol/proj.js';
export * as extent from 'ol/extent.js';
export * as condition from 'ol/events/condition.js';
export * as tilegrid from 'ol/tilegrid.js';
export * as control from 'ol/control.js';
export * as observable from 'ol/Observable.js';
