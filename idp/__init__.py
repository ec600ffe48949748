"""idp: a small, strict OpenID Connect identity provider."""

from flask import Flask


def create_app(config=None):
    """App factory: config → extensions → tenancy → blueprints → CLI → error handlers."""
    import os

    from flask_babel import get_locale

    from idp import cli
    from idp import logs
    from idp import web
    from idp.config import load_config
    from idp.errors import register_error_handlers
    from idp.extensions import babel
    from idp.extensions import csrf
    from idp.extensions import db
    from idp.extensions import migrate
    from idp.fastpath import BearerUserInfo
    from idp.fastpath import ClientEndpoints
    from idp.fastpath import ConstantDocuments
    from idp.federation.views import bp as federation_bp
    from idp.i18n import TRANSLATIONS_DIR
    from idp.i18n import compile_catalogs
    from idp.i18n import select_locale
    from idp.journey.views import bp as journey_bp
    from idp.oidc.server import authorization_server
    from idp.oidc.views import bp as oidc_bp
    from idp.oidc.views import well_known as oidc_well_known_bp
    from idp.services import throttle

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
        instance_path=os.path.join(root, "instance"),
    )
    app.config.update(load_config(config))
    logs.configure(app)

    db.init_app(app)
    web.discard_broken_sessions(app)
    migrate.init_app(app, db, directory=os.path.join(root, "migrations"), render_as_batch=True)
    limiter = web.create_limiter(app)  # before CSRF: a flood is refused before any other work
    csrf.init_app(app)
    throttle.init_app(app)
    app.jinja_env.globals["get_locale"] = get_locale
    compile_catalogs(TRANSLATIONS_DIR)
    babel.init_app(
        app, locale_selector=select_locale, default_translation_directories=TRANSLATIONS_DIR
    )
    authorization_server.init_app(app)

    app.register_blueprint(web.bp)
    app.register_blueprint(oidc_bp)
    app.register_blueprint(oidc_well_known_bp)
    app.register_blueprint(journey_bp)
    app.register_blueprint(federation_bp)
    if app.config["DEMO_RP"]:
        from idp.demo import bp as demo_bp

        app.register_blueprint(demo_bp)
    web.apply_rate_limits(app, limiter)
    cli.register(app)
    register_error_handlers(app)
    web.install_security_headers(app)
    fast = ConstantDocuments(ClientEndpoints(BearerUserInfo(app.wsgi_app, app), app), app)
    app.wsgi_app = web.DatabaseOutageGuard(fast)
    return app
