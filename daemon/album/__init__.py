"""album"""
