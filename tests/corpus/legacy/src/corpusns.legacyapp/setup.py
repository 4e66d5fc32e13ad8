# setup.py only: no pyproject.toml, no setup.cfg. A src layout, so that the editable
# install is a path buildout 6 scripts follow (an import finder they do not).
from setuptools import find_packages, setup

setup(
    name="corpusns.legacyapp",
    version="1.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    namespace_packages=["corpusns"],
    install_requires=["setuptools", "rich", "httpx"],
    entry_points={"console_scripts": ["legacyapp = corpusns.legacyapp:main"]},
)
