"""Package set-up for crossmodal; every value comes from settings.ini (nbdev 2 classic layout)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent / 'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def _reqs(key):
    "Space-separated requirement list under `key` in settings.ini."
    return cfg.get(key, '').split()

class build_py_with_notebooks(build_py):
    """build_py that also puts the notebooks (nbs/*.ipynb) into the built package as crossmodal/notebooks/.

    An installed wheel has no checkout, so `crossmodal reproduce` runs the section notebooks it carries. They are
    copied at build time only: the source tree keeps one copy, in nbs/. An editable install reads nbs/ directly."""
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return
        notebooks = sorted((Path(__file__).parent / 'nbs').glob('*.ipynb'))
        if not notebooks: raise SystemExit('crossmodal build: no notebooks in nbs/; build the package from a checkout')
        target = Path(self.build_lib) / 'crossmodal' / 'notebooks'
        self.mkpath(str(target))
        for nb in notebooks: self.copy_file(str(nb), str(target / nb.name))

# Paper-scale models: keras 3 runs OpenL3/VGGish/YAMNet/ResNet50/VGG16 on the torch backend; laion-clap itself is
# installed with --no-deps by `make install-paper` (its metadata would downgrade numpy and pull in wandb).
# tensorflow-cpu is only needed to read VGGish's original TF-1 checkpoint.
paper_requirements = ['keras>=3', 'h5py', 'transformers', 'torchlibrosa', 'ftfy', 'av', 'tensorflow-cpu==2.21.*']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8')
        if (Path(__file__).parent / 'README.md').exists() else cfg['description'],
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache-2.0',
    keywords=cfg['keywords'].split(),
    python_requires='>=' + cfg['min_python'],
    packages=setuptools.find_packages(include=['crossmodal', 'crossmodal.*']),
    include_package_data=True,
    package_data={'crossmodal': ['resources/**/*']},   # ontologies, published numbers, their licences
    install_requires=_reqs('requirements'),
    extras_require={'dev': _reqs('dev_requirements'), 'paper': paper_requirements,
                    'cluster': _reqs('cluster_requirements')},   # Ray: extraction and reproduction beyond one machine
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"],
    },
    classifiers=['Programming Language :: Python :: 3', 'Intended Audience :: Science/Research',
                 'License :: OSI Approved :: Apache Software License', 'Topic :: Multimedia :: Sound/Audio :: Analysis'],
    url=cfg['git_url'],
    project_urls={'Documentation': cfg['doc_host']},
    zip_safe=False,
    cmdclass={'build_py': build_py_with_notebooks},
)
